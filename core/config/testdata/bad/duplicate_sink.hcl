sink "webhook" "retrain" {
  config { url = "http://127.0.0.1:8080/a" }
}

sink "webhook" "retrain" {
  config { url = "http://127.0.0.1:8080/b" }
}

sink "webhook" "audit" {
}

monitor "*" {
  sinks = ["webhook.retrain", "webhook.retrian", "slack.retrain"]
}
