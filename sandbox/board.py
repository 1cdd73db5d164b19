"""``sandbox tb ID``: TensorBoard over one scenario's runs, the broken one and the latest
attempt named.

TensorBoard runs as a real child process (``python -m tensorboard.main`` of this
interpreter) on 127.0.0.1 only. It leads its own session, so a Ctrl-C at the terminal
reaches only us and we stop it ourselves (SIGTERM, then SIGKILL), and it dies with us
if we are killed outright (``PR_SET_PDEATHSIG``, Linux).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .catalog import Scenario
from .errors import EXIT_FAIL, SandboxError
from .harness.candidate import fingerprint
from .runs import RecordedRun, recorded_runs

HOST = "127.0.0.1"
READY_TIMEOUT_S = 90.0  # TensorBoard's own start takes seconds; a slow machine, more
STOP_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
URL = re.compile(r"https?://[^\s/]+:(\d+)/\S*")
EVENTS = "events.out.tfevents."
# What TensorBoard names the two runs of --compare in its run selector.
BROKEN_NAME, LATEST_NAME = "broken", "latest"


class NoRuns(SandboxError):
    """A scenario with no run logged under the log folder yet."""


class PortInUse(SandboxError):
    """``--port`` names a port something else already listens on."""


class BoardFailed(SandboxError):
    """TensorBoard itself would not start or stopped on its own."""

    exit_code = EXIT_FAIL


@dataclass(frozen=True)
class Board:
    """What ``sandbox tb`` shows: one scenario's run folders, and which of them are the
    broken (shipped) run and the latest attempt.
    """

    scenario: str
    folder: Path
    runs: list[RecordedRun]
    broken: RecordedRun | None
    latest: RecordedRun | None

    def logdir_args(self, compare: bool = False) -> list[str]:
        """TensorBoard's arguments for what to show: the scenario's folder, or with
        ``compare`` only the broken run and the latest attempt, named ``broken`` and
        ``latest`` in the run selector (``--logdir_spec``, which splits on commas).
        """
        if not compare:
            return ["--logdir", str(self.folder.resolve())]
        chosen = [(name, run) for name, run in ((BROKEN_NAME, self.broken),
                                                (LATEST_NAME, self.latest)) if run]
        for _, run in chosen:
            if "," in str(run.path.resolve()):
                raise SandboxError(f"--compare cannot pass {run.path} to TensorBoard: its "
                                   "path holds a comma, which --logdir_spec splits on. Leave "
                                   "out --compare, or use a --logdir without commas.")
        return ["--logdir_spec",
                ",".join(f"{name}:{run.path.resolve()}" for name, run in chosen)]


def _has_events(path: Path) -> bool:
    """Does a run folder hold an event file (in a seed folder, or itself)?"""
    with contextlib.suppress(OSError), os.scandir(path) as entries:
        for entry in entries:
            if entry.name.startswith(EVENTS):
                return True
            if entry.is_dir(follow_symlinks=False):
                with contextlib.suppress(OSError), os.scandir(entry.path) as inner:
                    if any(e.name.startswith(EVENTS) for e in inner):
                        return True
    return False


def board(scenario: Scenario, logdir: Path) -> Board:
    """The scenario's runs under ``logdir``; :class:`NoRuns` when it has none yet. The
    broken run is the newest recorded run of the shipped pipeline as it is now (else of
    any earlier version of it); the latest attempt is the newest run of anything else.
    """
    folder = Path(logdir) / scenario.id
    runs = [r for r in recorded_runs(folder) if _has_events(r.path)]
    if not runs:
        raise NoRuns(f"no runs of {scenario.id} under {folder} yet. `sandbox verify "
                     f"{scenario.id}` (or `sandbox start {scenario.id}`) makes one; pass "
                     "--logdir if they were written elsewhere.")
    shipped = [r for r in runs if r.is_shipped]
    current = [r for r in shipped if r.fingerprint == fingerprint(scenario)]
    broken = (current or shipped or [None])[-1]
    others = [r for r in runs if r is not broken and not r.is_shipped]
    return Board(scenario.id, folder, runs, broken, others[-1] if others else None)


def check_port(port: int) -> None:
    """:class:`PortInUse` (exit 2) when ``port`` is taken on 127.0.0.1."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        probe.bind((HOST, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} is already in use on {HOST}. Choose another with "
                            "--port, or leave --port out to take a free one.") from None
        raise PortInUse(f"cannot listen on {HOST}:{port}: {exc.strerror}. Choose another "
                        "port with --port, or leave it out.") from None
    finally:
        probe.close()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class TensorBoard:
    """One TensorBoard child process: :meth:`start`, :meth:`wait_ready`, :meth:`stop`."""

    def __init__(self, args: list[str], port: int | None = None, title: str = "sandbox"):
        self.command = [sys.executable, "-m", "tensorboard.main", *args, "--host", HOST,
                        "--port", str(port or 0), "--load_fast", "false",
                        "--window_title", title]
        self.port = port
        self.url: str | None = None
        self.process: subprocess.Popen[str] | None = None
        self._lines: deque[str] = deque(maxlen=40)
        self._found = threading.Event()

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream) -> None:
        """Keep the last lines TensorBoard printed (for errors), and its URL."""
        for line in stream:
            self._lines.append(line.rstrip())
            found = URL.search(line)
            if found and self.url is None:
                self.url = f"http://{HOST}:{found.group(1)}/"
                self._found.set()
        self._found.set()  # its output ended: it has exited, or is about to

    def said(self) -> str:
        """TensorBoard's last meaningful line of output, for a one-line error."""
        lines = [line for line in self._lines if line.strip()]
        errors = [line for line in lines if "error" in line.lower()]
        text = (errors or lines or ["(no output)"])[-1]
        return text if len(text) <= 200 else text[:197] + "..."

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> str:
        """Until TensorBoard answers HTTP at its URL; returns the URL."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._failed()
            if self.url is None:
                self._found.wait(0.1)
                continue
            if _answers(self.url + "data/runs"):
                return self.url
            time.sleep(0.1)
        raise BoardFailed(f"TensorBoard did not answer within {timeout:.0f} s "
                          f"(it said: {self.said()}).")

    def _failed(self) -> None:
        assert self.process is not None
        self._found.wait(2.0)  # the rest of its output
        text = " ".join(self._lines).lower()
        if self.port and ("in use" in text or "could not bind" in text):
            raise PortInUse(f"port {self.port} is already in use on {HOST}. Choose another "
                            "with --port, or leave --port out to take a free one.")
        raise BoardFailed(f"TensorBoard exited with code {self.process.returncode} before "
                          f"it answered: {self.said()}")

    def wait(self) -> int:
        """Until TensorBoard exits (it does not on its own): its exit code."""
        assert self.process is not None
        return self.process.wait()

    def stop(self) -> None:
        """SIGTERM (TensorBoard exits cleanly on it), then SIGKILL; safe to call twice."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, sig)  # it leads its own group: its children too
            try:
                process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            json.loads(response.read() or b"null")
            return response.status == 200
    except (OSError, ValueError, urllib.error.URLError):
        return False


@contextlib.contextmanager
def running(shown: Board, port: int | None = None, compare: bool = False,
            timeout: float = READY_TIMEOUT_S) -> Iterator[TensorBoard]:
    """TensorBoard over ``shown``, started and answering inside; stopped on the way out,
    however that is (Ctrl-C, SIGTERM, an error).
    """
    if port:
        check_port(port)
    args = shown.logdir_args(compare)
    server = TensorBoard(args, port, title=f"sandbox: {shown.scenario}")
    try:
        server.start()
        server.wait_ready(timeout)
        yield server
    finally:
        server.stop()
