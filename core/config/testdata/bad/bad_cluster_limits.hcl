cluster {
  servers             = []
  name                = "a_cluster_name_longer_than_32_chars"
  partitions          = 0
  replicas            = 0
  lease_ttl           = "2m"
  checkpoint_interval = "soon"

  tls {
    key = "../good/cluster/client.key"
  }

  spool {
    max_bytes = 1048575
  }
}

cluster {
  partitions = 2048
}
