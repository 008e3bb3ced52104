# HCL allows a block on one line only with a single argument.
detector "threshold" "accuracy_floor" {
  metric = "accuracy"
  config { min_samples = 100  floor = 0.90 }
}
