data_dir = "./data"

monitor "quality_inspector" {
  window = 
}
