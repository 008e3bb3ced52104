# driftd example configuration, used by `make run`.
#
# Relative paths are resolved against this file's directory (examples/), so
# the paths below put the data directory, the plugins and the socket at the
# root of the repository, wherever driftd is started from.
#
# Check a change without starting the daemon:  driftd validate examples/config.hcl
#
# The running daemon reloads this file when it changes (or on SIGHUP, or
# `driftd reload`). A file with an error is refused whole and the running
# config stays; `driftd status` shows why. data_dir and listen.socket need
# a restart to change.

# Where driftd keeps its state: the windows, in windows.snapshot, written
# every snapshot_interval (and when driftd stops) and read back at start;
# and the retrain jobs waiting for their sinks, in outbox.db.
data_dir = "../data"
snapshot_interval = "30s"

# Where the plugin binaries are: a detector or sink block with plugin
# "threshold" runs ../bin/plugins/driftd-plugin-threshold (`make build`
# puts them there).
plugin_dir = "../bin/plugins"

# trace, debug, info, warn or error; text or json.
log_level  = "info"
log_format = "text"

# The API: metrics in (POST /v1/metrics), events out (GET /v1/events) and
# status, all over one Unix socket.
listen {
  socket      = "../driftd.sock"
  socket_mode = "0660" # owner and group may connect
  # max_connections = 1000 # default: the open-file limit less 256, at most 4096
  idle_timeout = "2m"  # a keep-alive connection idle this long is closed
  body_timeout = "30s" # a request body that sends no byte this long ends its request
  # The status page over TCP, at http://127.0.0.1:9465/ (default off; it has
  # no login, so keep it on loopback).
  # http = "127.0.0.1:9465"
}

# Limits on request bodies sent to POST /v1/metrics and on what they make the
# daemon hold (these are the defaults).
ingest {
  max_line_bytes      = 1048576  # one NDJSON line: 1 MiB
  max_document_bytes  = 16777216 # one JSON array or pretty-printed object: 16 MiB
  max_values_per_line = 64       # values of one metric; a line with more is rejected
  max_streams         = 100000   # streams (model, version, metric); a line making more is rejected
}

# The event stream (these are the defaults).
events {
  history = 10000 # events kept for reconnecting subscribers (`since=<seq>`)
  buffer  = 1024  # events queued per subscriber before a slow one is cut off
}

# Detectors: detector "<plugin>" "<name>". Monitors refer to one as
# "<plugin>.<name>". Each watches one metric; its config block is checked
# against the attributes its plugin declares.

# Drift when the mean accuracy over the plugin's window falls below 0.90,
# once at least 100 values have arrived.
detector "threshold" "accuracy_floor" {
  metric = "accuracy"
  config {
    min_samples = 100
    floor       = 0.90
  }
}

# Drift when the mean latency rises above 250 ms.
detector "threshold" "latency_ceiling" {
  metric = "latency_ms"
  config {
    ceiling = 250
  }
}

# Page-Hinkley test (River's semantics) for a sustained drop in accuracy.
detector "pagehinkley" "accuracy_ph" {
  metric = "accuracy"
  config {
    mode      = "down"
    delta     = 0.005
    threshold = 1
  }
}

# Sinks: sink "<plugin>" "<name>". A monitor's drift becomes a retrain job
# for each sink it lists, written to data_dir and delivered with retries
# (see docs/sinks.md). This one POSTs each job, signed, to a URL. It is
# commented out because nothing listens there in a fresh clone, and a sink
# whose receiver is down retries (and logs) until it gives up. To try it,
# start a receiver, uncomment this block and the `sinks` line of the
# quality_inspector monitor below, and put the secret in
# examples/secrets/webhook (file() paths are relative to this file's
# directory). The file is read again at every reload (SIGHUP or `driftd
# reload`), so a rotated secret signs the next job; one trailing newline is
# dropped. env("NAME") would read the daemon's own environment instead, the
# one it was started with, which a reload does not change.
#
# sink "webhook" "retrain" {
#   timeout = "30s" # one delivery call (the default)
#   retry {         # the defaults
#     initial_backoff = "1s"
#     max_backoff     = "5m"
#     max_attempts    = 20
#     max_age         = "24h"
#   }
#   config {
#     url    = "http://127.0.0.1:8080/retrain"
#     secret = file("secrets/webhook")
#   }
# }

# Monitors wire models to detectors and sinks. The label is a model name or a glob;
# for each model the most specific monitor wins: an exact name, then a glob,
# then "*".
monitor "quality_inspector" {
  versions  = ["*"]  # version globs
  window    = 1000   # values kept per model version and metric
  detectors = ["threshold.accuracy_floor", "threshold.latency_ceiling", "pagehinkley.accuracy_ph"]
  # sinks     = ["webhook.retrain"] # with the sink block above
  cooldown  = "15m"  # at most one retrain job per model version and sink in this time
  expire_after = "168h" # retire a model version that received nothing this long (the default; "off": never)
}

# Every other model: latency only, over a smaller window.
monitor "*" {
  window    = 500
  detectors = ["threshold.latency_ceiling"]
}
