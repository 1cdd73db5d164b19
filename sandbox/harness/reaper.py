"""The reaper: kills what a verification left behind once the grader is gone.

It runs as its own small process (``python -I -S reaper.py TOKEN``, standard library
only, about 20 ms to start), in a session of its own, with a pipe from the grader on
stdin. The grader writes ``+PGID`` when a seed's process group starts and ``-PGID`` when
it has killed it. When the pipe closes (the grader exited, or was killed with SIGKILL
and ran no code of ours) the reaper kills every group still listed, then every process
that still carries the verification's token in its environment: a candidate's child that
left its group (``start_new_session=True``, a double fork) keeps the environment it was
started with. The grader uses :func:`sweep` itself too, when a seed ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def marked(entry: bytes) -> list[tuple[int, int]]:
    """(pid, parent pid) of every live process whose environment holds ``entry``
    (``b"NAME=value"``), as the kernel shows it in ``/proc/PID/environ``.
    """
    found: list[tuple[int, int]] = []
    if not os.path.isdir("/proc"):  # not Linux: process groups are all there is
        return found
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as handle:
                if entry not in handle.read().split(b"\0"):
                    continue
            with open(f"/proc/{name}/stat", "rb") as handle:
                parent = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):  # gone meanwhile, or not ours to read
            continue
        found.append((int(name), parent))
    return found


def sweep(entry: bytes, keep_children_of: int | None = None) -> None:
    """SIGKILL every process marked with ``entry`` except ``keep_children_of`` and its
    direct children (the grader and its servers), until none is left: one may fork while
    the others are being killed.
    """
    for _ in range(5):
        doomed = [pid for pid, parent in marked(entry)
                  if keep_children_of not in (pid, parent) and pid != os.getpid()]
        if not doomed:
            return
        for pid in doomed:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def main(token: str) -> None:
    groups: set[int] = set()
    for line in sys.stdin:
        with contextlib.suppress(ValueError):
            (groups.add if line[0] == "+" else groups.discard)(int(line[1:]))
    for pgid in groups:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    sweep(token.encode())


if __name__ == "__main__":
    main(sys.argv[1])
