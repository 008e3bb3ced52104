ingest {
  max_line_bytes      = 0
  max_document_bytes  = -1
  max_values_per_line = 0
  max_streams         = 1e9
}

events {
  history = 0
  buffer  = -5
}
