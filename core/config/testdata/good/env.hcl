# env() works for static settings too.
data_dir = env("DRIFTD_TEST_DATA_DIR", "./fallback")

listen {
  socket = env("DRIFTD_TEST_SOCKET")
}
