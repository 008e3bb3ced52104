cluster {
  servers     = "nats://10.0.0.5:4222"
  partitions  = "many"
  replicas    = 1.5
  lease_ttl   = 2
  credentials = "../good/cluster"

  spool {
    max_bytes = true
  }
}
