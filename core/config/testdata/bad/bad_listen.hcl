listen {
  socket      = ""
  socket_mode = "0999"
  metrics     = "localhost"

  max_connections = 0
  idle_timeout    = "forever"
  body_timeout    = "10ms"
}

listen {
  socket_mode = "01777"
  metrics     = "127.0.0.1:http"

  max_connections = 2000000
  idle_timeout    = "48h"
}
