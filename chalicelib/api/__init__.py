"""The REST API: JSON for scripts, one web page for people."""
