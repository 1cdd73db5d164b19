"""The cost of the verdict-integrity checks on ``sandbox verify``, measured two ways.

1. End to end: ``sandbox verify ID --solution`` wall time on the commit before the
   checks (``BASE``) and on this tree, in alternating pairs, for the scenarios whose
   training is the same in both (exploding-lr and batchnorm-eval: same pipeline, config,
   solution and data; only the id's version changed). Both pay the same process start-up
   and the same broken baseline seed, so the difference is what the checks cost: the JSON
   protocol, the serving round trip, the grader's scoring, the in-process instruments.
2. In the seed's process: ``train()`` CPU time with the telemetry alone (as before) and
   with the new instruments too (row tracing, clip monitor, tamper check), for every
   scenario's reference fix, in alternating pairs.
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

import torch
from paired import overhead

from sandbox import catalog, data
from sandbox.config import Config
from sandbox.harness import candidate
from sandbox.harness.job import Job
from sandbox.harness.run import Run
from sandbox.harness.tracing import plain
from sandbox.harness.worker import Development, Instruments, load_pipeline
from sandbox.telemetry import EventWriter, Telemetry

ROOT = Path(__file__).resolve().parents[1]
BASE = "1deef97"  # the last commit before the integrity checks
SAME_TRAINING = {"exploding-lr-v2": "exploding-lr-v1", "batchnorm-eval-v2": "batchnorm-eval-v1"}


def checkout(commit: str) -> Path:
    """The tree at ``commit`` in a temporary folder (git archive: no worktree metadata)."""
    folder = Path(tempfile.mkdtemp(prefix=f"sandbox-{commit}-"))
    blob = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True,
                          check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
        archive.extractall(folder, filter="data")
    return folder


def verify_wall(tree: Path, scenario_id: str) -> float:
    """One ``sandbox verify --solution`` of ``tree``'s own package, fresh logs each time."""
    logs = tempfile.mkdtemp(prefix="bench-logs-")
    env = {**os.environ, "PYTHONPATH": str(tree), "SANDBOX_HOME": logs}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sandbox", "verify", scenario_id, "--solution",
                    "--device", "cpu", "--logdir", logs], cwd=tree, env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - started


def end_to_end(pairs: int) -> list[str]:
    base = checkout(BASE)
    lines = [f"| scenario (--solution) | before ({BASE}) median s | now median s | "
             "extra, median of pairs | IQR |", "| --- | --- | --- | --- | --- |"]
    for now_id, old_id in SAME_TRAINING.items():
        verify_wall(ROOT, now_id)  # warm the page cache for both trees
        verify_wall(base, old_id)
        before, after, ratios = [], [], []
        for n in range(pairs):  # alternate which goes first, so drift cancels
            if n % 2:
                old, new = verify_wall(base, old_id), verify_wall(ROOT, now_id)
            else:
                new, old = verify_wall(ROOT, now_id), verify_wall(base, old_id)
            before.append(old)
            after.append(new)
            ratios.append(new / old)
        q1, median, q3 = statistics.quantiles(ratios, n=4)
        lines.append(f"| {now_id} | {statistics.median(before):.2f} | "
                     f"{statistics.median(after):.2f} | {100 * (median - 1):+.1f}% | "
                     f"{100 * (q1 - 1):+.1f}% to {100 * (q3 - 1):+.1f}% |")
        print(lines[-1], flush=True)
    return lines


def train_cpu(scenario_id: str, instruments: bool) -> float:
    scenario = catalog.get(scenario_id)
    fixed = candidate.make(scenario, solution=True)
    pipeline = load_pipeline(fixed.pipeline)
    traced = Development.of(data.development(fixed.config["data"], 0))
    dev = traced if instruments else Development(plain(traced.x), traced.y,
                                                 traced.num_classes, traced.groups)
    writer = EventWriter(Path(tempfile.mkdtemp()))
    installed = Instruments(len(dev), writer, Job.telemetry_cadence) if instruments else None
    telemetry = installed.telemetry if installed else Telemetry(writer, Job.telemetry_cadence)
    run = Run(0, torch.device("cpu"), writer, telemetry, on_progress=lambda s, v: None)
    (installed or telemetry).install()
    torch.manual_seed(0)
    started = time.process_time()
    pipeline.train(Config(fixed.config), dev, run)
    spent = time.process_time() - started
    (installed or telemetry).remove()
    return spent


def in_process(pairs: int) -> list[str]:
    torch.set_num_threads(1)
    lines = ["| scenario (reference fix) | telemetry only, median s | with the new instruments "
             "| IQR |", "| --- | --- | --- | --- |"]
    for scenario_id in sorted(s for s in catalog.discover()):
        train_cpu(scenario_id, True)  # warm-up
        bare, median, spread = overhead(lambda s=scenario_id: train_cpu(s, False),
                                        lambda s=scenario_id: train_cpu(s, True), pairs)
        lines.append(f"| {scenario_id} | {bare:.3f} | {median} | {spread} |")
        print(lines[-1], flush=True)
    return lines


def main(pairs: int = 10) -> list[str]:
    lines = ["End to end, `sandbox verify ID --solution` (3 seeds + 1 broken baseline seed, "
             f"{pairs} alternating pairs, fresh logs each run):", ""]
    lines += end_to_end(pairs)
    lines += ["", f"Inside the seed's process, `train()` of the reference fix (CPU time, one "
              f"thread, {3 * pairs} pairs):", ""]
    lines += in_process(3 * pairs)
    return lines


if __name__ == "__main__":
    print("\n".join(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)))
