# A host of a fleet: every setting of the cluster block, none at its default.
cluster {
  servers = [
    "nats://10.0.0.5:4222",
    "tls://nats-2.example.com",
    "10.0.0.7:4222",
    "nats://[::1]:4223",
  ]
  name                = "drift_prod-1"
  instance            = "web-3"
  partitions          = 128
  replicas            = 5
  lease_ttl           = "1500ms"
  checkpoint_interval = "10s"
  credentials         = "cluster/nats.creds"

  tls {
    ca   = "cluster/ca.pem"
    cert = "cluster/client.pem"
    key  = "cluster/client.key"
  }

  spool {
    max_bytes = "512MiB"
  }
}
