"""`sandbox diagnose` on a big log folder against tensorboard's EventAccumulator, same files,
same run of this script.

The folder: 4 runs x 100,000 steps, each step logging loss/train and lr, plus loss/val
every 500 steps (about 0.8M scalars, standard TFRecord event files). EventAccumulator's
time is the time to load every scalar (``Reload`` with no sampling, then ``Scalars`` for
each tag); ours is the whole diagnosis, reading and every rule. Each is timed in a fresh
process (imports excluded, median of 3), and the process's peak RSS is reported.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from sandbox.events import EventWriter

RUNS, STEPS = 4, 100_000

MEASURE = r"""
import json, resource, sys, time
folder, which = sys.argv[1], sys.argv[2]
if which == "accumulator":
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator, SCALARS
    from pathlib import Path
    started = time.perf_counter()
    count = 0
    for run in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
        acc = EventAccumulator(str(run), size_guidance={SCALARS: 0})
        acc.Reload()
        count += sum(len(acc.Scalars(tag)) for tag in acc.Tags()["scalars"])
else:
    from sandbox.diagnosis import diagnose
    started = time.perf_counter()
    count = len(diagnose(folder))
elapsed = time.perf_counter() - started
print(json.dumps({"s": elapsed, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "count": count}))
"""


def make_logs(folder: Path, runs: int = RUNS, steps: int = STEPS) -> int:
    """Healthy-looking curves: a decaying noisy loss, a cosine lr, a validation loss."""
    scalars = 0
    for r in range(runs):
        writer = EventWriter(folder / f"run{r}")
        for step in range(1, steps + 1):
            loss = 0.2 + 2.0 * math.exp(-step / 20_000) * (1 + 0.1 * math.sin(step * 0.7 + r))
            writer.add("loss/train", loss, step)
            writer.add("lr", 0.01 * 0.5 * (1 + math.cos(math.pi * step / steps)), step)
            scalars += 2
            if step % 500 == 0:
                writer.add("loss/val", loss * 1.05, step)
                scalars += 1
            if step % 10_000 == 0:
                writer.flush()
        writer.close()
    return scalars


def timed(folder: Path, which: str, repeats: int = 3) -> tuple[float, float]:
    runs = [json.loads(subprocess.run([sys.executable, "-c", MEASURE, str(folder), which],
                                      capture_output=True, text=True, check=True).stdout)
            for _ in range(repeats)]
    return statistics.median(r["s"] for r in runs), max(r["rss_mb"] for r in runs)


def main() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scalars = make_logs(folder)
        size_mb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
        ea_s, ea_mb = timed(folder, "accumulator")
        ours_s, ours_mb = timed(folder, "diagnose")
    lines = [f"{RUNS} runs x {STEPS} steps, {scalars} scalars, {size_mb:.0f} MB of event files",
             "", "| reader | median s | peak RSS MB |", "| --- | --- | --- |",
             f"| tensorboard EventAccumulator (load every scalar) | {ea_s:.2f} | {ea_mb:.0f} |",
             f"| sandbox diagnose (read + every rule) | {ours_s:.2f} | {ours_mb:.0f} |",
             "", f"ratio, sandbox diagnose / EventAccumulator: {ours_s / ea_s:.2f}"]
    print("\n".join(lines))
    return lines


def memory(sizes: tuple[int, ...] = (100_000, 400_000, 1_600_000)) -> list[str]:
    """Peak RSS of ``sandbox diagnose`` on one run of each length: past MAX_POINTS per tag
    a curve is thinned as it is read, so memory stops growing with the log.
    """
    lines = ["| steps in one run | scalars | event file MB | diagnose s | peak RSS MB |",
             "| --- | --- | --- | --- | --- |"]
    for steps in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            scalars = make_logs(Path(tmp), runs=1, steps=steps)
            size_mb = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 2**20
            ours_s, ours_mb = timed(Path(tmp), "diagnose", repeats=1)
        lines.append(f"| {steps:,} | {scalars:,} | {size_mb:.0f} | {ours_s:.1f} | {ours_mb:.0f} |")
        print(lines[-1], flush=True)
    return lines


if __name__ == "__main__":
    memory() if sys.argv[1:] == ["memory"] else main()
