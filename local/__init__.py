"""Local-only tooling (not deployed): the embedded AWS emulation and its helpers."""
