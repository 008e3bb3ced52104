monitor "zero" {
  window = 0
}

monitor "huge" {
  window = 1000001
}

monitor "fraction" {
  window = 2.5
}

monitor "negative" {
  window = -10
}
