detector "threshold" "accuracy_floor" {
  metric = "accuracy"
  config { floor = 0.9 }
}

detector "threshold" "accuracy_floor" {
  metric = "accuracy"
  config { floor = 0.8 }
}

# Same name, other plugin: a different detector, unused.
detector "pagehinkley" "accuracy_floor" {
  metric = "accuracy"
}

monitor "*" {
  detectors = ["threshold.accuracy_floor", "threshold.accuracy_floor"]
}
