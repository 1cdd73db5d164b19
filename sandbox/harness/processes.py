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
- a tiny reaper process (:mod:`.reaper`), in its own session, holds the other end of a
  pipe from the grader and the list of live seed groups. When that pipe closes (the
  grader exited or was killed) it kills every group still listed;
- every process of a verification carries a token in its environment, so what left its
  group (``start_new_session=True``, a double fork) is found in ``/proc`` and killed
  too: by the grader when the seed or the verification ends, by the reaper when the
  grader is gone. Only code that also clears its environment escapes all of this.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

from . import reaper as reaper_script

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
GRADER_PID = "SANDBOX_GRADER_PID"
SESSION = "SANDBOX_RUN"  # in every process of this grader's verifications
SEED = "SANDBOX_SEED"  # in every process a seed's code starts with exec
_token = f"{SESSION}={secrets.token_hex(8)}"



class _Reaper:
    """The grader's side of the reaper: one per grader process, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None

    def _send(self, line: str) -> None:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = subprocess.Popen(
                    [sys.executable, "-I", "-S", reaper_script.__file__, _token],
                    stdin=subprocess.PIPE,
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
    """SIGKILL a seed and everything it started, then stop watching the group: its
    process group, and what left the group but was started with exec (and so carries
    the seed's mark).

    A seed killed before it made its group has no group yet (ESRCH), and nothing of its
    own either: the candidate's code had not run.
    """
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)
    reaper_script.sweep(f"{SEED}={pgid}".encode())
    reaper.forget(pgid)


def sweep_session() -> None:
    """Once every seed is over: kill anything left of them (a bare fork that left its
    group carries only the session's mark), sparing the grader and its servers.
    """
    reaper_script.sweep(_token.encode(), keep_children_of=os.getpid())


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
    os.environ[SEED] = str(os.getpid())
    die_with_parent(parent)


@contextlib.contextmanager
def starting_servers() -> Iterator[None]:
    """Servers started inside have detached stdio, ignore SIGINT, and are told the
    grader's pid, so that the forkserver's first preload (:mod:`.server_guard`) ties it
    to the grader before it spends seconds importing torch.
    """
    name, _, value = _token.partition("=")
    os.environ.update({GRADER_PID: str(os.getpid()), name: value})
    try:
        with detached():
            yield
    finally:
        os.environ.pop(GRADER_PID, None)
        os.environ.pop(name, None)


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
