listen {
  socket = "./a.sock"
}

events {
}

listen {
  socket = "./b.sock"
}

events {
}

detector "threshold" "floor" {
  metric = "accuracy"
  config { floor = 0.9 }
  config { floor = 0.8 }
}

monitor "*" {
  detectors = ["threshold.floor"]
}
