"""The listening-study engine's user-facing error: one sentence naming the file, field or value."""

from __future__ import annotations

from mosapp.core.errors import MosappError


class StudyError(MosappError):
    """A study definition, store or rating a user got wrong (or a database that cannot be used).

    The message is one sentence that names the study file, field, database or value and
    says what would be accepted; the command line prints it as is and exits with status 2.
    """


__all__ = ["StudyError"]
