monitor "*" {
  window   = var.window
  cooldown = upper("15m")
}
