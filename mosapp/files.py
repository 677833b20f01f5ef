"""Atomic file writes shared by every writer (audio files, .sgc streams)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO, Callable

from mosapp.errors import MosappError


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], None],
    *,
    suffix: str,
    error: type[MosappError] = MosappError,
    catch: tuple[type[BaseException], ...] = (OSError,),
    reason: Callable[[BaseException], str] | None = None,
) -> None:
    """Call ``write(fh)`` on a hidden temporary file in ``path``'s folder, fsync it, then
    :func:`os.replace` it over ``path``: an interrupted run never leaves a half-written file.

    Raises:
        ``error``: the folder does not exist, ``path`` is a folder, or ``write``/the file
            system raised one of ``catch`` (the sentence gives ``reason(exc)``).
    """
    name = os.fspath(path)
    p = Path(name)
    folder = p.parent
    if not folder.is_dir():
        raise error(f"{name} cannot be written because the folder {folder} does not exist.")
    if p.is_dir():
        raise error(f"{name} is a folder; give a file name ending in {suffix}.")
    # Hidden name in the same folder: os.replace is only atomic within one file system.
    tmp = folder / f".{p.name}.{secrets.token_hex(4)}.tmp"
    try:
        # os.open with 0o666 lets the umask decide the permissions, as a plain write would.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except catch as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        why = reason(exc) if reason else (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc))
        raise error(f"{name} cannot be written ({why}).") from None
    except BaseException:
        # KeyboardInterrupt and the like: still leave no temporary file behind.
        tmp.unlink(missing_ok=True)
        raise
