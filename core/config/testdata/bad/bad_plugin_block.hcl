plugin_timeout = "1ms"

plugin "threshold" {
  path   = "bin/threshold"
  sha256 = "abc123"
}

plugin "../evil" {
  path = "/bin/sh"
}

plugin "threshold" {
  path = "other"
}

plugin "pagehinkley" {
  sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
}

plugin "cusum" {
  path    = ""
  version = "1"
}
