monitor "model-[ab" {
}

monitor "quality inspector" {
}

monitor "fraud_*" {
  versions = ["v1[", "", "v2"]
}

monitor "empty_versions" {
  versions = []
}
