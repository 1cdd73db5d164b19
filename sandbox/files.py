"""Writing files next to what a candidate's process can touch, without being fooled by it.

The grader writes into run folders that the candidate's code can also write to, so a
planted symlink, FIFO or folder under a name the grader is about to use must never make
it write elsewhere, block, or crash. Whole files are written to a fresh temporary name in
the same folder and renamed over the target (a rename replaces a symlink, it does not
follow it); append-only files are opened once, exclusively, without following links.
The user's workspaces (:mod:`sandbox.home`) are written and backed up the same way.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
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
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o644, dir_fd=self.fd)
        except OSError as exc:
            raise named(exc, self.path / name) from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=self.fd)
            if isinstance(exc, OSError):
                raise named(exc, self.path / name) from None
            raise

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def named(error: OSError, path: Path) -> OSError:
    """The same error, naming the file the user knows (a write through a descriptor, or
    to a temporary name, names none or the wrong one): "No space left on device" is only
    useful with the path.
    """
    return OSError(error.errno, error.strerror, str(path))


def write_atomic(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` afterwards, whatever was planted there before."""
    path = Path(path)
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise named(exc, path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if path.is_dir() and not path.is_symlink():
            raise IsADirectoryError(f"{path} is a folder; nothing was written there")
        os.replace(temporary, path)
    except BaseException as exc:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise named(exc, path) from None
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


def copy_tree(source: Path, target: Path) -> list[Path]:
    """Copy what is in ``source`` into the empty folder ``target`` without following links.

    A link is copied as a link (a link to a big folder costs nothing, and ``loop -> .``
    cannot recurse), a folder is walked with a stack (no recursion limit), a regular file
    is copied with its times and mode. FIFOs, sockets and devices are left out: they hold
    no data, and opening one can block or read forever. Returns what was left out. The
    first error is raised as it is, with the path being written when it had none (ENOSPC
    from the copy names no file), so the caller can say where and why.
    """
    left_out: list[Path] = []
    pending = [(Path(source), Path(target))]
    while pending:
        here, there = pending.pop()
        with os.scandir(here) as entries:
            for entry in entries:
                copy = there / entry.name
                try:
                    if entry.is_symlink():
                        os.symlink(os.readlink(entry.path), copy)
                    elif entry.is_dir(follow_symlinks=False):
                        os.mkdir(copy)
                        pending.append((Path(entry.path), copy))
                    elif entry.is_file(follow_symlinks=False):
                        shutil.copy2(entry.path, copy, follow_symlinks=False)
                    else:
                        left_out.append(Path(entry.path))
                except OSError as exc:
                    if exc.filename is None:
                        exc.filename = str(copy)
                    raise
    return left_out
