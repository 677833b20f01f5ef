"""The mosapp version (written into .sgc files and study databases)."""

__version__ = "0.1.0"
