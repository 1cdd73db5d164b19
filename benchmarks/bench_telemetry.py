"""Telemetry overhead: the same training loop with and without the harness's logging.

Runs a scenario's reference pipeline in this process, alternating a bare run (``run.log``
and ``run.watch`` do nothing, no optimizer hooks) with an instrumented one (the harness's
Run: buffered TensorBoard events, per-layer gradient norms, update ratios and the LR at
the default cadence), and reports the ratio of the medians.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from sandbox import catalog, config, data
from sandbox.harness.run import Run
from sandbox.harness.worker import load_pipeline
from sandbox.telemetry import EventWriter, GradientWatcher


class BareRun:
    def __init__(self, seed: int):
        self.seed, self.device = seed, torch.device("cpu")

    def log(self, tag, value, step):  # the pipeline still calls loss.item() itself
        pass

    def watch(self, model):
        return model


def one_run(scenario_id: str, instrumented: bool) -> float:
    scenario = catalog.get(scenario_id)
    pipeline = load_pipeline(scenario.solution_dir / "pipeline.py"
                             if (scenario.solution_dir / "pipeline.py").is_file()
                             else scenario.pipeline_path)
    cfg = config.Config(_solution_config(scenario))
    dev, _ = data.build(cfg.data.to_dict(), 0)
    torch.manual_seed(0)
    if instrumented:
        writer = EventWriter(Path(tempfile.mkdtemp()))
        watcher = GradientWatcher(writer)
        run = Run(0, torch.device("cpu"), writer, watcher, on_progress=lambda s, v: None)
        watcher.install()
    else:
        run = BareRun(0)
    started = time.perf_counter()
    pipeline.train(cfg, dev, run)
    if instrumented:
        watcher.remove()
        writer.flush()
    return time.perf_counter() - started


def _solution_config(scenario):
    from sandbox import _yaml
    solution = scenario.solution_dir / "config.yaml"
    base = _yaml.load_file(solution) if solution.is_file() else None
    return config.resolve(scenario, base=base)


def main(repeats: int = 7) -> list[str]:
    torch.set_num_threads(1)
    lines = ["| scenario (reference fix) | bare median s | instrumented median s | overhead |",
             "| --- | --- | --- | --- |"]
    for scenario_id in sorted(catalog.discover()):
        one_run(scenario_id, True)  # warm-up
        bare, inst = [], []
        for _ in range(repeats):
            bare.append(one_run(scenario_id, False))
            inst.append(one_run(scenario_id, True))
        b, i = statistics.median(bare), statistics.median(inst)
        lines.append(f"| {scenario_id} | {b:.3f} | {i:.3f} | {100 * (i / b - 1):+.1f}% |")
        print(lines[-1], flush=True)
    return lines


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
