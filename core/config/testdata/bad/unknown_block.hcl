detectr "threshold" "accuracy_floor" {
  metric = "accuracy"
}

monitor "quality_inspector" {
  alert {
    to = "ops"
  }
}
