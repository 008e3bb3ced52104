monitor "words" {
  cooldown = "15 minutes"
}

monitor "negative" {
  cooldown = "-1m"
}

monitor "unitless" {
  cooldown = 900
}
