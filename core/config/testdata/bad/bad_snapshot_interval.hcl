snapshot_interval = "30 seconds"
