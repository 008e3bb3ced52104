# driftd configuration for a host install (systemd unit, container image,
# Kubernetes DaemonSet). `make install` puts a copy in
# $(PREFIX)/share/driftd/driftd.hcl with plugin_dir under $(PREFIX); copy it to
# /etc/driftd/driftd.hcl and edit it there. The daemon reloads the file when
# it changes. Check a change with `driftd validate /etc/driftd/driftd.hcl`.

data_dir   = "/var/lib/driftd"
plugin_dir = "/usr/local/lib/driftd/plugins"

listen {
  socket      = "/run/driftd/driftd.sock"
  socket_mode = "0660" # the daemon's user and group; add serving apps to the group
  # metrics   = "127.0.0.1:9464" # GET /metrics on TCP, for Prometheus
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

# A retrain webhook. The secret is read from the daemon's environment: with
# systemd, `systemctl edit driftd` and Environment=DRIFTD_WEBHOOK_SECRET=...
#
# sink "webhook" "retrain" {
#   config {
#     url    = "http://127.0.0.1:8080/retrain"
#     secret = env("DRIFTD_WEBHOOK_SECRET")
#   }
# }

monitor "*" {
  window    = 1000
  detectors = ["threshold.accuracy_floor", "pagehinkley.accuracy_ph"]
  # sinks   = ["webhook.retrain"]
  cooldown  = "15m"
}
