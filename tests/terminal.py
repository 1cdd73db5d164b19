"""Drive the CLI through a pseudo-terminal, as a person at a keyboard would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\r")


class Terminal:
    """``sandbox ARGS`` with a pty for stdin, stdout and stderr, in its own process group
    (so ``interrupt`` is exactly what Ctrl-C does: SIGINT to the whole foreground group).
    """

    def __init__(self, *args: str, cwd: Path, env: dict[str, str]):
        master, slave = os.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", *args], stdin=slave, stdout=slave, stderr=slave,
            cwd=cwd, env={**os.environ, "COLUMNS": "200", "LINES": "50", **env},
            start_new_session=True, close_fds=True)
        os.close(slave)
        self.master = master
        self.seen = ""

    def _pump(self, timeout: float) -> None:
        import select
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the child closed the pty
                chunk = b""
            self.seen += ANSI.sub("", chunk.decode("utf-8", "replace"))

    def expect(self, text: str, timeout: float = 120, since: int = 0) -> str:
        """Wait until ``text`` has been printed (after offset ``since`` of the output);
        returns everything printed from ``since`` on.
        """
        deadline = time.monotonic() + timeout
        while text not in self.seen[since:]:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {text!r}; the terminal shows:\n"
                                     f"{self.seen[-3000:]}")
            if self.proc.poll() is not None:
                self._pump(0.2)
                if text not in self.seen[since:]:
                    raise AssertionError(f"exited {self.proc.returncode} before {text!r}:\n"
                                         f"{self.seen[-3000:]}")
            self._pump(0.2)
        return self.seen[since:]

    def send(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def press(self, key: str) -> None:
        """One key, no Enter (Enter itself is ``"\\r"``, what a terminal sends)."""
        os.write(self.master, key.encode())

    def line_mode(self) -> bool:
        """Whether the terminal is in its usual line-by-line, echoing mode (the pty's
        master reports the settings its slave side has).
        """
        import termios
        lflag = termios.tcgetattr(self.master)[3]
        return bool(lflag & termios.ICANON) and bool(lflag & termios.ECHO)

    def interrupt(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._pump(0.2)
        self._pump(0.2)
        if self.proc.poll() is None:
            self.proc.kill()
            raise AssertionError(f"still running after {timeout} s:\n{self.seen[-3000:]}")
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)
