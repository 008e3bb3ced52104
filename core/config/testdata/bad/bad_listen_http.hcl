listen {
  http = "localhost"
}
