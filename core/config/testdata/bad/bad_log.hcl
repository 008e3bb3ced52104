log_level  = "verbose"
log_format = "xml"
plugin_dir = ""
