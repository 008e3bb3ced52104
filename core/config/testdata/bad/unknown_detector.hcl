detector "threshold" "accuracy_floor" {
  metric = "accuracy"
}

detector "pagehinkley" "accuracy_ph" {
  metric = "accuracy"
}

monitor "quality_inspector" {
  detectors = [
    "threshold.acuracy_floor",
    "accuracy_ph",
    "adwin.accuracy",
  ]
  sinks = ["webhook.retrain"]
}
