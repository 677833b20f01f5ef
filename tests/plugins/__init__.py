"""Plug-ins that exist to show, and to test, how mosapp is extended (docs/architecture.md's worked examples)."""
