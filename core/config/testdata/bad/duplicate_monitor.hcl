monitor "quality_inspector" {
  window = 100
}

monitor "*" {
}

monitor "quality_inspector" {
  window = 200
}
