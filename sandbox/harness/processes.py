"""Nothing a verification starts outlives it, however the verification ends.

Three kinds of process serve a verification: multiprocessing's forkserver and resource
tracker (started once, on first use), the seeds the forkserver forks, and whatever a
candidate's code starts itself. Each is tied to the grader in a way that holds even
when the grader is killed with SIGKILL and no cleanup code of ours runs:

- the servers are started with stdin, stdout and stderr on /dev/null, so a pipe the
  user reads the verdict through (``sandbox verify | tail -1``, ``capture_output``) is
  closed when the grader exits, whatever is still running; they ignore SIGINT, so a
  Ctrl-C at the terminal reaches only the grader, which stops everything itself; and
  the forkserver dies with the grader (``PR_SET_PDEATHSIG``, set before it imports
  torch, since a forkserver busy importing does not notice that the grader is gone);
- each seed leads its own process group, which the grader kills as a whole when the
  seed ends, taking the candidate's own children with it; and a seed dies with the
  forkserver (``PR_SET_PDEATHSIG``), which exits when the grader does;
- a tiny reaper process, in its own session, holds the other end of a pipe from the
  grader and the list of live seed groups. When that pipe closes (the grader exited
  or was killed) it kills every group still listed. It needs no torch and starts in
  about 20 ms.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
GRADER_PID = "SANDBOX_GRADER_PID"

REAPER = """
import os, signal, sys
groups = set()
for line in sys.stdin:
    sign, pgid = line[0], int(line[1:])
    if sign == "+":
        groups.add(pgid)
    else:
        groups.discard(pgid)
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class _Reaper:
    """The grader's side of the reaper: one per grader process, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None

    def _send(self, line: str) -> None:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", REAPER], stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                    start_new_session=True)
            assert self._process.stdin is not None
            with contextlib.suppress(OSError):
                self._process.stdin.write(line + "\n")
                self._process.stdin.flush()

    def watch(self, pgid: int) -> None:
        self._send(f"+{pgid}")

    def forget(self, pgid: int) -> None:
        self._send(f"-{pgid}")


reaper = _Reaper()


def kill_group(pgid: int) -> None:
    """SIGKILL a seed and everything it started, then stop watching the group.

    A seed killed before it made its group has no group yet (ESRCH), and nothing of its
    own either: the candidate's code had not run.
    """
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)
    reaper.forget(pgid)


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when ``parent`` exits (Linux; elsewhere a no-op). ``parent``
    may already be gone by the time this runs, so that is checked after the call.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def seed_setup() -> None:
    """First thing in a seed's process, before any candidate code: lead a new process
    group (so the seed and its children are killed as one) and die with the forkserver.
    """
    parent = os.getppid()
    os.setpgid(0, 0)
    die_with_parent(parent)


@contextlib.contextmanager
def starting_servers() -> Iterator[None]:
    """Servers started inside have detached stdio, ignore SIGINT, and are told the
    grader's pid, so that the forkserver's first preload (:mod:`.server_guard`) ties it
    to the grader before it spends seconds importing torch.
    """
    os.environ[GRADER_PID] = str(os.getpid())
    try:
        with detached():
            yield
    finally:
        os.environ.pop(GRADER_PID, None)


@contextlib.contextmanager
def detached() -> Iterator[None]:
    """Servers started inside inherit /dev/null as stdio and an ignored SIGINT.

    multiprocessing starts its servers by fork and exec with the grader's own stdio, and
    offers no option to change that; so the grader's descriptors are pointed at
    /dev/null for the moment it takes to start them. No other thread prints meanwhile:
    servers start before any seed runs.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.flush()
    saved = {fd: _dup(fd) for fd in (0, 1, 2)}
    null = os.open(os.devnull, os.O_RDWR)
    previous = signal.getsignal(signal.SIGINT) if _main_thread() else None
    try:
        if previous is not None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        yield
    finally:
        for fd, copy in saved.items():
            if copy is None:  # it was closed before; leave it closed
                os.close(fd)
            else:
                os.dup2(copy, fd)
                os.close(copy)
        os.close(null)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _dup(fd: int) -> int | None:
    try:
        return os.dup(fd)
    except OSError:
        return None


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
