cluster {
  servers = null
  name    = null # null leaves an optional setting at its default
}
