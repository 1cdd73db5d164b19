"""Writing files next to what a candidate's process can touch, without being fooled by it.

The grader writes into run folders that the candidate's code can also write to, so a
planted symlink, FIFO or folder under a name the grader is about to use must never make
it write elsewhere, block, or crash. Whole files are written to a fresh temporary name in
the same folder and renamed over the target (a rename replaces a symlink, it does not
follow it); append-only files are opened once, exclusively, without following links.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` afterwards, whatever was planted there before."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if path.is_dir() and not path.is_symlink():
            raise IsADirectoryError(f"{path} is a folder; nothing was written there")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def open_new(path: Path) -> int:
    """A file descriptor for appending to a file that did not exist (never a link)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW,
                   0o644)


def is_regular(path: Path) -> bool:
    """A regular file itself, not a link, a FIFO or a device (reading those can hang)."""
    try:
        return Path(path).lstat().st_mode & 0o170000 == 0o100000
    except OSError:
        return False
