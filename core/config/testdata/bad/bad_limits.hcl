ingest {
  max_line_bytes     = 0
  max_document_bytes = -1
}

events {
  history = 0
  buffer  = -5
}
