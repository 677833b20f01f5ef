"""Atomic file writes shared by every writer (audio files, .sgc streams, CSV and PNG reports).

A write goes to a hidden temporary file in the destination's folder, is fsynced, then
:func:`os.replace` d over the destination, so an interrupted run never leaves a half-written
file. Temporary names are ``.<name prefix>.mosapp-<pid>-<8 hex>.tmp``, shortened so they
fit the file system's name limit (``NAME_MAX``, 255 bytes) whatever the destination's
name. The temporary is removed on any exception (``KeyboardInterrupt``, and SIGTERM where
the command line turns it into one, included). A run killed with SIGKILL cannot clean up;
the next write into the same folder removes temporaries whose process no longer exists
(and the ``.<name>.<8 hex>.tmp`` files mosapp 0.1.0 left for the same destination).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from mosapp.core.errors import MosappError

#: The file-name limit where the file system does not say (Linux, macOS, Windows: 255).
DEFAULT_NAME_MAX = 255
_TMP_RE = re.compile(r"^\..*\.mosapp-(\d+)-[0-9a-f]{8}\.tmp$")
_OLD_TMP_RE = re.compile(r"^\.(.+)\.[0-9a-f]{8}\.tmp$")


def name_max(folder: str | os.PathLike[str]) -> int:
    """Longest file name (bytes) ``folder``'s file system accepts."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return DEFAULT_NAME_MAX


def temporary_name(path: str | os.PathLike[str], limit: int = DEFAULT_NAME_MAX) -> Path:
    """A fresh hidden temporary name next to ``path`` that fits in ``limit`` bytes."""
    p = Path(path)
    tail = f".mosapp-{os.getpid()}-{secrets.token_hex(4)}.tmp"
    room = max(0, limit - 1 - len(tail))
    prefix = os.fsencode(p.name)[:room].decode("utf-8", "ignore")  # never half a character
    return p.parent / f".{prefix}{tail}"


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process
    return True


def remove_stale_temporaries(folder: str | os.PathLike[str], name: str | None = None) -> list[Path]:
    """Remove the temporaries of killed mosapp runs in ``folder``; returns what was removed.

    A temporary counts as stale when the process named in it no longer exists. With
    ``name``, the 0.1.0-style temporary of that destination (``.<name>.<8 hex>.tmp``) goes too.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith("."):
            continue
        match = _TMP_RE.match(entry.name)
        stale = match is not None and not _process_exists(int(match.group(1)))
        if not stale and name is not None:
            old = _OLD_TMP_RE.match(entry.name)
            stale = old is not None and old.group(1) == name
        if stale:
            try:
                if entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


def existing_file(path: str | os.PathLike[str], not_a: str, error: type[MosappError] = MosappError) -> Path:
    """``path`` as a :class:`~pathlib.Path`, once it names something that exists and is not a
    folder: the first check of every reader of a file a person named.

    Raises:
        error: "<path> does not exist.", "<path> is a folder, not <not_a>." or, for a pipe, a
            device or a socket (which would block or never end), "<path> is a named pipe (FIFO) …".
    """
    name = os.fspath(path)
    p = Path(name)
    if not p.exists():
        raise error(f"{name} does not exist.")
    if p.is_dir():
        raise error(f"{name} is a folder, not {not_a}.")
    if not p.is_file():
        # A FIFO would block until something writes to it, /dev/zero never ends: refuse, do not read.
        kind = ("a named pipe (FIFO)" if p.is_fifo() else "a device" if p.is_char_device() or p.is_block_device()
                else "a socket" if p.is_socket() else "not a regular file")
        raise error(f"{name} is {kind}; mosapp reads regular files only, so copy what it holds into one first.")
    return p


_GLOB_CHARS = frozenset("*?[")
#: Directory entries a glob may look at before it is refused (``/**/*.wav`` would walk the disk).
MAX_GLOB_ENTRIES = 200_000


def bounded_glob(pattern: str, *, max_matches: int, max_entries: int | None = None,
                 error: type[MosappError] = MosappError) -> list[Path]:
    """The files ``pattern`` matches (``glob.glob(pattern, recursive=True)`` rules: ``**`` is any
    depth, names starting with a dot only where the pattern's part does), sorted, looking at no
    more than ``max_entries`` (default :data:`MAX_GLOB_ENTRIES`) directory entries and stopping
    after ``max_matches`` + 1 files.

    Raises:
        error: the walk looks at more than ``max_entries`` entries, or finds more than
            ``max_matches`` files: the end of a sentence that begins with the pattern ("looks
            through more than …; narrow it …."), for the caller to prefix.
    """
    if max_entries is None:
        max_entries = MAX_GLOB_ENTRIES

    parts = Path(pattern).parts
    first = next((i for i, part in enumerate(parts) if _GLOB_CHARS & set(part)), len(parts))
    root = Path(*parts[:first]) if first else Path(".")
    walk = _GlobWalk(parts[first:], max_matches, max_entries, error)
    if walk.rest:
        walk.visit(root, 0)
    if walk.full:
        raise error(f"matches more than {max_matches} files; narrow it.")
    return sorted(walk.found)


@dataclass
class _GlobWalk:
    """:func:`bounded_glob`'s walk: the pattern's parts from the first with a wildcard, and what it found."""

    rest: tuple[str, ...]
    max_matches: int
    max_entries: int
    error: type[MosappError]
    found: set[Path] = field(default_factory=set)
    seen: int = 0

    @property
    def full(self) -> bool:
        return len(self.found) > self.max_matches

    def visit(self, folder: Path, k: int) -> None:
        """Match ``folder``'s entries against part ``k`` of the pattern (``**``: any depth, zero included)."""
        if self.full:
            return
        part = self.rest[k]
        last = k == len(self.rest) - 1
        if part == "**":
            if last:
                return
            self.visit(folder, k + 1)  # zero folders deep
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            self.seen += 1
            if self.seen > self.max_entries:
                raise self.error(f"looks through more than {self.max_entries} files and folders before it is done; "
                                 f"narrow it to the folder that holds the audio.")
            if entry.name.startswith(".") and not part.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows links, as glob does
            except OSError:
                continue
            self._follow(entry, is_dir, k, last)
            if self.full:
                return

    def _follow(self, entry: os.DirEntry[str], is_dir: bool, k: int, last: bool) -> None:
        """One entry against part ``k``: descend into a folder, or keep a matching file."""
        import fnmatch  # noqa: PLC0415 - only globs need it

        part = self.rest[k]
        if part == "**":
            if is_dir and not entry.is_symlink():
                self.visit(Path(entry.path), k)
        elif fnmatch.fnmatchcase(entry.name, part):
            if last:
                if entry.is_file():
                    self.found.add(Path(entry.path))
            elif is_dir:
                self.visit(Path(entry.path), k + 1)


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], object],
    *,
    suffix: str,
    error: type[MosappError] = MosappError,
    catch: tuple[type[BaseException], ...] = (OSError,),
    reason: Callable[[BaseException], str] | None = None,
    mode: int | None = None,
) -> None:
    """Call ``write(fh)`` (what it returns is ignored) on a hidden temporary file in ``path``'s folder, fsync it, then
    :func:`os.replace` it over ``path``: an interrupted run never leaves a half-written file.
    ``mode`` (e.g. 0o600 for results as private as the database they come from) is the file's
    permissions from its first byte on; None lets the umask decide, as a plain write would.

    Raises:
        ``error``: the folder does not exist, ``path`` is a folder, its name is longer than
            the file system allows, or ``write``/the file system raised one of ``catch``
            (the sentence gives ``reason(exc)``).
    """
    name = os.fspath(path)
    p = Path(name)
    folder = p.parent
    if not folder.is_dir():
        raise error(f"{name} cannot be written because the folder {folder} does not exist.")
    limit = name_max(folder)
    size = len(os.fsencode(p.name))
    if size > limit:
        raise error(f"{name} cannot be written: its file name is {size} bytes long and this file system allows "
                    f"at most {limit}; choose a shorter name.")
    if p.is_dir():
        raise error(f"{name} is a folder; give a file name ending in {suffix}.")
    remove_stale_temporaries(folder, p.name)
    # Hidden name in the same folder: os.replace is only atomic within one file system.
    tmp = temporary_name(p, limit)
    try:
        # os.open with 0o666 lets the umask decide the permissions, as a plain write would.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
        if mode is not None and hasattr(os, "fchmod"):
            os.fchmod(fd, mode)  # exactly this, whatever the umask
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
        # KeyboardInterrupt, SystemExit from SIGTERM and the like: still leave no temporary file behind.
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise
