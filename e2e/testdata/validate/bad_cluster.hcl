# cluster: partitions beyond 1024.
# The test sets DRIFTD_E2E_PLUGIN_DIR and DRIFTD_E2E_DIR.
data_dir   = "${env("DRIFTD_E2E_DIR")}/data"
plugin_dir = env("DRIFTD_E2E_PLUGIN_DIR")

listen {
  socket      = "${env("DRIFTD_E2E_DIR")}/driftd.sock"
  socket_mode = "0600"
}

detector "threshold" "accuracy_floor" {
  metric = "accuracy"
  config {
    min_samples = 100
    floor       = 0.90
    window      = 1000
  }
}

detector "pagehinkley" "accuracy_ph" {
  metric = "accuracy"
  config {
    mode      = "down"
    delta     = 0.005
    threshold = 1
  }
}

monitor "quality_inspector" {
  window    = 1000
  detectors = ["threshold.accuracy_floor", "pagehinkley.accuracy_ph"]
}

monitor "*" {
  detectors = ["threshold.accuracy_floor"]
}

cluster {
  servers    = ["nats://127.0.0.1:4222"]
  partitions = 4096
}
