data_dri = "./data"

listen {
  socket = "./driftd.sock"
  mode   = "0660"
}

monitor "quality_inspector" {
  windw = 500
}
