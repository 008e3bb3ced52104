detector "threshold" {
  metric = "accuracy"
}

sink "webhook" "retrain" "extra" {
}

monitor {
}
