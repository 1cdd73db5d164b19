"""How right is the diagnoser, and what does the probe cost?

Accuracy: every catalog scenario's shipped pipeline and reference solution on each of its
seeds, plus the probe zoo (probe_zoo.py, 10 loops x 3 seeds). A broken catalog run must
show its documented symptoms and a fixed one nothing; a zoo run must show its expected
symptoms and nothing outside expected + allowed. Per symptom: true positives, false
positives, false negatives, precision and recall. Findings on broken catalog runs that
the scenario does not document are listed, not scored: nobody labelled them.

Overhead: a plain training loop (UCI digits MLP, batch 32) with a Probe at the default
cadence against the same loop with a do-nothing stand-in, paired runs, CPU time.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import paired
import torch
import torch.nn.functional as F
from probe_zoo import CASES, digits, mlp

from sandbox import catalog
from sandbox.diagnosis import SYMPTOMS, diagnose
from sandbox.harness import candidate
from sandbox.probe import Probe
from sandbox.verification import verify


def labelled_runs(workdir: Path) -> list[tuple[str, set[str], set[str], set[str]]]:
    """(run, named, expected, allowed) for every catalog and zoo run."""
    rows = []
    for scenario in catalog.discover().values():
        for solution in (False, True):
            outcome = verify(scenario, candidate.make(scenario, solution=solution),
                             device="cpu", logdir=workdir / "catalog", plot=False)
            expected = set() if solution else set(scenario.symptom_ids)
            for seed in outcome.seeds:
                named = {f.symptom for f in seed.findings}
                allowed = set() if solution else named - expected  # unlabelled extras
                rows.append((f"{scenario.id} {'fixed' if solution else 'broken'} seed "
                             f"{seed.seed}", named, expected, allowed))
    torch.set_num_threads(1)
    for case in CASES:
        for seed in range(6):
            folder = workdir / "zoo" / case.name / f"seed{seed}"
            case.loop(seed, folder)
            [run] = diagnose(folder)
            kind = "zoo" if seed < 3 else "zoo-held-out"
            rows.append((f"{kind} {case.name} seed {seed}", {f.symptom for f in run.findings},
                         set(case.expect), set(case.allow)))
    return rows


def accuracy(rows: list[tuple[str, set[str], set[str], set[str]]]) -> list[str]:
    tp, fp, fn = Counter(), Counter(), Counter()
    extras, misses = [], []
    for name, named, expected, allowed in rows:
        for s in expected & named:
            tp[s] += 1
        for s in expected - named:
            fn[s] += 1
            misses.append(f"{name}: missed {s}")
        for s in named - expected - allowed:
            fp[s] += 1
            misses.append(f"{name}: named {s}")
        extras += [f"{name}: {s}" for s in sorted(named & allowed - expected)
                   if not name.startswith("zoo")]  # zoo extras are labelled as allowed
    lines = ["| symptom | TP | FP | FN | precision | recall |",
             "| --- | --- | --- | --- | --- | --- |"]
    for s in SYMPTOMS:
        p = tp[s] / (tp[s] + fp[s]) if tp[s] + fp[s] else float("nan")
        r = tp[s] / (tp[s] + fn[s]) if tp[s] + fn[s] else float("nan")
        lines.append(f"| {s} | {tp[s]} | {fp[s]} | {fn[s]} | {p:.2f} | {r:.2f} |")
    total_tp, total_fp, total_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    lines.append(f"| **all** | {total_tp} | {total_fp} | {total_fn} | "
                 f"{total_tp / max(1, total_tp + total_fp):.2f} | "
                 f"{total_tp / max(1, total_tp + total_fn):.2f} |")
    lines += ["", f"{len(rows)} runs. Errors: " + ("; ".join(misses) if misses else "none") + ".",
              "", "Undocumented findings on broken catalog runs (not scored): "
              + ("; ".join(extras) if extras else "none") + "."]
    return lines


class NoProbe:
    def watch(self, model):
        return model

    def log(self, tag, value, step):
        pass

    def close(self):
        pass


def user_loop(probe: Probe | NoProbe, hidden: int, seed: int = 0) -> float:
    torch.manual_seed(seed)
    x, y, xv, yv = digits(seed)
    model = probe.watch(mlp(hidden))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    started = time.process_time()
    step = 0
    for _ in range(4):
        for batch in torch.randperm(len(y)).split(32):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            probe.log("loss/train", loss.item(), step)
        with torch.no_grad():
            probe.log("loss/val", F.cross_entropy(model(xv), yv).item(), step)
    probe.close()
    return time.process_time() - started


def probe_overhead(pairs: int = 30) -> list[str]:
    """Each probed run against the mean of the bare runs before and after it."""
    torch.set_num_threads(1)
    lines = ["| loop | bare median s | probe overhead, median of pairs | IQR |",
             "| --- | --- | --- | --- |"]
    with tempfile.TemporaryDirectory() as tmp:
        for hidden in (64, 256):
            user_loop(Probe(Path(tmp) / "warm"), hidden)
            runs = iter(range(pairs))
            bare, median, spread = paired.overhead(
                lambda h=hidden: user_loop(NoProbe(), h),
                lambda h=hidden, n=runs: user_loop(Probe(Path(tmp) / f"{h}-{next(n)}"), h),
                pairs)
            lines.append(f"| digits MLP, hidden {hidden}, 4 epochs of batch 32 | "
                         f"{bare:.3f} | {median} | {spread} |")
            print(lines[-1], flush=True)
    return lines


def main(pairs: int = 30) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        rows = labelled_runs(Path(tmp))
    lines = ["Catalog runs and zoo seeds 0-2 (the thresholds were set looking at these):", ""]
    lines += accuracy([r for r in rows if not r[0].startswith("zoo-held-out")])
    lines += ["", "Zoo seeds 3-5, held out (never looked at while setting thresholds):", ""]
    lines += accuracy([r for r in rows if r[0].startswith("zoo-held-out")])
    print("\n".join(lines), flush=True)
    lines += ["", "Probe overhead at the default cadence (CPU time, one thread, "
              f"{pairs} pairs):", ""]
    return lines + probe_overhead(pairs)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
