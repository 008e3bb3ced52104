telemetry {
  stream_series = -1
}

telemetry {
  stream_series = "many"
}
