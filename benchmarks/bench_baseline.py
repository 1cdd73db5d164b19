"""What drawing the broken run on every seed costs: ``sandbox start ID`` (which now runs
the shipped pipeline on every seed, not seed 0 only) and ``sandbox verify ID --solution``
on a fresh log folder (which then runs every broken seed beside the fix), on ``BASE`` and
on this tree, in alternating order, fresh home and logs each time.

    python benchmarks/bench_baseline.py [BASE] [ID ...]

A ``verify`` after ``start`` costs nothing extra either way: it finds the recorded run.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IDS = ["exploding-lr-v2", "batchnorm-eval-v2", "alarm-lstm-v1"]
REPEATS = 3


def unpack(rev: str) -> Path:
    """``rev``'s tree in a temporary folder (``python -m sandbox`` there runs its package)."""
    tree = Path(tempfile.mkdtemp(prefix="bench-base-"))
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def wall(tree: Path, command: str, scenario_id: str) -> float:
    scratch = Path(tempfile.mkdtemp(prefix="bench-run-"))
    solution = ["--solution"] if command == "verify" else []
    args = [sys.executable, "-m", "sandbox", command, scenario_id, *solution, "--logdir",
            str(scratch / "runs"), "--device", "cpu"]
    started = time.monotonic()
    subprocess.run(args, cwd=tree, env={**os.environ, "SANDBOX_HOME": str(scratch / "home")},
                   capture_output=True, check=False)
    return time.monotonic() - started


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else "HEAD"
    ids = sys.argv[2:] or IDS
    trees = {"before": unpack(base), "now": ROOT}
    print(f"| command | before ({base}), s | now, s | ratio |\n|---|---|---|---|")
    for scenario_id in ids:
        for command in ("start", "verify"):
            times: dict[str, list[float]] = {"before": [], "now": []}
            for i in range(REPEATS):
                for name in (("before", "now") if i % 2 == 0 else ("now", "before")):
                    times[name].append(wall(trees[name], command, scenario_id))
            old, new = (statistics.median(times[k]) for k in ("before", "now"))
            flag = " --solution" if command == "verify" else ""
            label = f"sandbox {command} {scenario_id}{flag}"
            print(f"| {label} | {old:.2f} | {new:.2f} | {new / old:.2f} |")


if __name__ == "__main__":
    main()
