data_dir = env("DRIFTD_TEST_SURELY_UNSET")

plugin_dir = env("DRIFTD_TEST_SURELY_UNSET", "a", "b")

listen {
  socket = env("")
}
