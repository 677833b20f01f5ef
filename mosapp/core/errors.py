"""User-facing errors: each carries one sentence that names the file, field or value and what is accepted."""


class MosappError(Exception):
    """An error a user can meet (bad input, unknown name, missing file).

    The message is a single sentence meant to be printed as is; the command line
    prints it without a traceback and exits non-zero. Anything else raised is a bug.
    """


class AudioError(MosappError):
    """An audio file that cannot be read, or whose content the pipeline cannot process."""


class ConfigError(MosappError):
    """An unknown name or an out-of-range setting (geometry, backend, device …)."""


class BitstreamError(MosappError):
    """A ``.sgc`` file or codec payload that is damaged, truncated or from a newer version."""


class InvalidStreamError(BitstreamError):
    """A stream whose header values are out of their declared ranges, or do not fit its payload
    or the model loaded to decode it (a forged or buggy file, not a damaged one)."""


class ModelError(MosappError):
    """Model weights that are missing, unreadable or do not fit the model."""


class MemoryLimitError(MosappError):
    """Work that would need more memory than the ceiling (:mod:`mosapp.core.memory`), refused before allocating."""
