"""The `medkg` command line: thin drivers above `pipelines/` (Beam) and `api/` (the HTTP service)."""
