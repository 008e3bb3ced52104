data_dir = ["./data"]

listen {
  socket_mode = true
}

monitor "quality_inspector" {
  window    = "big"
  versions  = "v1"
  detectors = [{ name = "threshold.accuracy_floor" }]
}
