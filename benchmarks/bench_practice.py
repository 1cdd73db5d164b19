"""The practice commands a user runs between edits: `sandbox stats` (empty and with a
heavy user's history) and `sandbox hint`, whole processes; and what one history write
costs, alone and with a second process writing at the same time."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandbox.history import History

WRITER = """
import sys
from sandbox.history import History
log = History.in_home(sys.argv[1])
attempt = log.open_attempt("b-v1")
print("writing", flush=True)
while True:
    log.record_verification(attempt.id, "b-v1", passed=False)
"""


def wall(args: list[str], home: Path, repeats: int) -> float:
    env = {**os.environ, "SANDBOX_HOME": str(home)}
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True,
                       env=env, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def heavy_history(home: Path, attempts: int = 1000) -> None:
    log = History.in_home(home)
    for n in range(attempts):
        attempt = log.open_attempt(f"s{n % 20}-v1")
        log.add_hint(attempt.id, 3)
        log.record_verification(attempt.id, attempt.scenario, passed=False)
        log.record_verification(attempt.id, attempt.scenario, passed=True)


def write_ms(home: Path, n: int = 300, contended: bool = False) -> str:
    """Median and 95th percentile of one write, in milliseconds."""
    log = History.in_home(home)
    attempt = log.open_attempt("a-v1")
    other = None
    if contended:  # measure only once the other writer is writing
        other = subprocess.Popen([sys.executable, "-c", WRITER, str(home)],
                                 stdout=subprocess.PIPE, text=True)
        other.stdout.readline()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        log.record_verification(attempt.id, "a-v1", passed=False)
        times.append(time.perf_counter() - started)
    if other is not None:
        other.kill()
        other.wait()
    p95 = statistics.quantiles(times, n=20)[-1]
    return f"{1000 * statistics.median(times):.2f} ms (p95 {1000 * p95:.2f} ms)"


def main() -> list[str]:
    lines = ["| measurement | median |", "| --- | --- |"]
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as heavy:
        rows = [("sandbox stats, no history yet", f"{wall(['stats'], Path(empty), 15):.3f} s"),
                ("sandbox hint exploding-lr-v2",
                 f"{wall(['hint', 'exploding-lr-v2'], Path(empty), 5):.3f} s")]
        heavy_history(Path(heavy))
        rows.append(("sandbox stats, 1000 attempts / 2000 verifications",
                     f"{wall(['stats'], Path(heavy), 15):.3f} s"))
    with tempfile.TemporaryDirectory() as alone, tempfile.TemporaryDirectory() as busy:
        rows.append(("one history write (a verification), alone", write_ms(Path(alone))))
        rows.append(("one history write, another process writing",
                     write_ms(Path(busy), contended=True)))
    for name, value in rows:
        lines.append(f"| {name} | {value} |")
        print(lines[-1], flush=True)
    return lines


if __name__ == "__main__":
    main()
