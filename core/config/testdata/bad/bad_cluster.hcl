cluster {
  servers = [
    "nats://10.0.0.5:4222",
    "ws://10.0.0.6:4222",
    "nats://10.0.0.7:99999",
    "10.0.0.8",
    "nats://10.0.0.5:4222",
    "nats://10.0.0.9:4222/path",
  ]
  name                = "drift.prod"
  instance            = "web 3"
  partitons           = 64
  replicas            = 7
  lease_ttl           = "100ms"
  checkpoint_interval = "10ms"
  credentials         = "nope.creds"

  tls {
    ca   = ""
    cert = "../good/cluster/client.pem"
  }

  spool {
    max_bytes = "12kB"
  }

  spool {
    max_bytes = "1Gb/s"
  }
}
