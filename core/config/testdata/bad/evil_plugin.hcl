detector "../evil" "escape" {
  metric = "accuracy"
}

detector "Threshold" "upper" {
  metric = "accuracy"
}

detector "threshold" "has.dot" {
  metric = "accuracy"
}

sink "/bin/sh" "root" {
}

sink "webhook" "" {
}

monitor "*" {
  detectors = ["../evil.escape", "Threshold.upper", "threshold.has.dot"]
  sinks     = ["/bin/sh.root"]
}
