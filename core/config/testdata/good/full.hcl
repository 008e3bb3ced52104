# Every setting driftd knows, with values other than the defaults.
data_dir   = "/var/lib/driftd"
plugin_dir = "/usr/lib/driftd/plugins"
log_level  = "debug"
log_format = "json"

listen {
  socket      = "/run/driftd/driftd.sock"
  socket_mode = "0600"
  metrics     = "127.0.0.1:9464"

  max_connections = 200
  idle_timeout    = "45s"
  body_timeout    = "5s"
}

ingest {
  max_line_bytes      = 65536
  max_document_bytes  = 1048576
  max_values_per_line = 16
  max_streams         = 5000
}

events {
  history = 500
  buffer  = 64
}

detector "threshold" "accuracy_floor" {
  metric = "accuracy"
  config {
    min_samples = 100
    floor       = 0.90
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

detector "threshold" "latency_ceiling" {
  metric = "latency_ms"
  config { ceiling = 250 }
}

sink "webhook" "retrain" {
  config {
    url    = "http://127.0.0.1:8080/retrain"
    secret = env("DRIFTD_TEST_WEBHOOK_SECRET", "")
  }
}

monitor "quality_inspector" {
  versions  = ["v1.*", "v2.*"]
  window    = 500
  detectors = ["threshold.accuracy_floor", "pagehinkley.accuracy_ph"]
  sinks     = ["webhook.retrain"]
  cooldown  = "1h30m"
  expire_after = "72h"
}

monitor "*" {
  detectors = ["threshold.latency_ceiling"]
}

telemetry {
  stream_series = 50
}
