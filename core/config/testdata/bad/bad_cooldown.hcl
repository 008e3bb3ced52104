monitor "words" {
  cooldown = "15 minutes"
}

monitor "negative" {
  cooldown = "-1m"
}

monitor "unitless" {
  cooldown = 900
}

monitor "expire_words" {
  expire_after = "a week"
}

monitor "expire_short" {
  expire_after = "10ms"
}
