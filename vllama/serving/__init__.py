"""The pipeline without HTTP: typed requests in, typed events out.

`api/` parses a body into a request from `requests`, calls `generate`, `embed` or `load_only` with a
`ServingContext`, and renders the `events` in its dialect; failures are the `errors` classes, which
the API maps to status codes in one table.
"""
