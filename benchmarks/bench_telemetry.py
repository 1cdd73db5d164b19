"""Telemetry overhead: the same training loop with and without the harness's logging.

Runs a scenario's reference pipeline in this process, alternating a bare run (``run.log``
and ``run.watch`` do nothing, no optimizer hooks) with an instrumented one (the harness's
Run: buffered TensorBoard events, per-layer gradient norms, update ratios and the LR at
the default cadence), and reports the ratio of the medians.
"""

from __future__ import annotations

import sys
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
from sandbox.harness.worker import Development, load_pipeline
from sandbox.telemetry import EventWriter, Telemetry


class BareRun:
    def __init__(self, seed: int):
        self.seed, self.device = seed, torch.device("cpu")

    def log(self, tag, value, step):  # the pipeline still calls loss.item() itself
        pass

    def watch(self, model):
        return model


def one_run(scenario_id: str, instrumented: bool) -> float:
    scenario = catalog.get(scenario_id)
    fixed = candidate.make(scenario, solution=True)
    pipeline = load_pipeline(fixed.pipeline)
    cfg = Config(fixed.config)
    dev = Development.of(data.development(fixed.config["data"], 0))
    torch.manual_seed(0)
    if instrumented:
        writer = EventWriter(Path(tempfile.mkdtemp()))
        watcher = Telemetry(writer, Job.telemetry_cadence)
        run = Run(0, torch.device("cpu"), writer, watcher, on_progress=lambda s, v: None)
        watcher.install()
    else:
        run = BareRun(0)
    started = time.process_time()
    pipeline.train(cfg, dev, run)
    if instrumented:
        watcher.remove()
        writer.flush()
    return time.process_time() - started


def main(pairs: int = 30) -> list[str]:
    """Paired design: each instrumented run is compared with the mean of the bare runs just
    before and after it, so drift in the machine's speed cancels; the median of those
    ratios and its interquartile range are reported. Times are CPU seconds."""
    torch.set_num_threads(1)
    lines = ["| scenario (reference fix) | bare median s | overhead, median of pairs | IQR |",
             "| --- | --- | --- | --- |"]
    for scenario_id in sorted(catalog.discover()):
        one_run(scenario_id, True)  # warm-up
        bare, median, spread = overhead(lambda s=scenario_id: one_run(s, False),
                                        lambda s=scenario_id: one_run(s, True), pairs)
        lines.append(f"| {scenario_id} | {bare:.3f} | {median} | {spread} |")
        print(lines[-1], flush=True)
    return lines


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
