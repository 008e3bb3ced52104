listen {
  socket      = ""
  socket_mode = "0999"
  metrics     = "localhost"
}

listen {
  socket_mode = "01777"
  metrics     = "127.0.0.1:http"
}
