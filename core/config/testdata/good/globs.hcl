# Monitors for exact names, globs and the catch-all, in no particular order.
monitor "*" {
  window = 100
}

monitor "fraud_*" {
  window    = 200
  detectors = ["threshold.floor"]
}

monitor "fraud_scorer" {
  versions  = ["v2", "v3-rc?"]
  window    = 300
  detectors = ["threshold.floor"]
}

monitor "fraud_[a-m]*" {
  window = 400
}

detector "threshold" "floor" {
  metric = "precision"
  config { floor = 0.5 }
}
