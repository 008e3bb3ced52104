detector "threshold" "spaces" {
  metric = "acc uracy"
}

detector "threshold" "missing" {
  config { floor = 0.9 }
}

monitor "*" {
  detectors = ["threshold.spaces", "threshold.missing"]
}
