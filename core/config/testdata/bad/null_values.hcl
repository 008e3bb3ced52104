# null keeps the default, except where a value is required.
data_dir = null

detector "threshold" "floor" {
  metric = null
}

monitor "*" {
  window    = null
  detectors = ["threshold.floor", null]
}
