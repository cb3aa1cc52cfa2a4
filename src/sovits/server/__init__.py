"""The HTTP API (FastAPI) over `sovits.api`: routes under /api/v1 and the so-vits-svc VST route."""
