# A host of a fleet that leaves everything but the servers at its default.
cluster {
  servers = ["nats://127.0.0.1:4222"]
}
