"""Writing files next to what a candidate's process can touch, without being fooled by it.

The grader writes into run folders that the candidate's code can also write to, so a
planted symlink, FIFO or folder under a name the grader is about to use must never make
it write elsewhere, block, or crash. Whole files are written to a fresh temporary name in
the same folder and renamed over the target (a rename replaces a symlink, it does not
follow it); append-only files are opened once, exclusively, without following links.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path


class Folder:
    """A folder the grader made and keeps open. Everything it writes goes through the open
    handle, so a candidate that renames the folder and puts a link in its place changes
    nothing about where the grader writes; :attr:`inside` reads through the handle too.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)

    @property
    def inside(self) -> str:
        return f"/proc/self/fd/{self.fd}"

    def write(self, name: str, data: bytes) -> None:
        """``name`` holds ``data`` afterwards, whatever was planted there before."""
        temporary = f".{name}.{secrets.token_hex(8)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644,
                     dir_fd=self.fd)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=self.fd)
            raise

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


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


def open_new(path: Path | str, dir_fd: int | None = None) -> int:
    """A file descriptor for appending to a file that did not exist (never a link)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW,
                   0o644, dir_fd=dir_fd)


def is_regular(path: Path) -> bool:
    """A regular file itself, not a link, a FIFO or a device (reading those can hang)."""
    try:
        return Path(path).lstat().st_mode & 0o170000 == 0o100000
    except OSError:
        return False
