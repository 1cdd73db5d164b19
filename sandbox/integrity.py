"""For graders: where a verification came from, and what in it looks too good.

``provenance`` says exactly what was judged (sha256 of every candidate file and of the
scenario's files, the criteria applied, torch, device, how the hidden sample was drawn),
so two results can be compared. ``flags`` are not criteria: they point a grader at
results worth a second look, such as a test metric above what the reference fix
reaches, far fewer gradient samples than it needs, a validation gap of exactly zero on
every seed, or training identical to the reference fix's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .catalog import Scenario
from .criteria import samples
from .harness.candidate import Candidate, sha256_file
from .metrics import METRICS, Metric
from .reference import TEST_METRIC_SLACK, Reference

FEW_SAMPLES = 0.5  # a candidate that trains on under half the reference's samples


def _flag(name: str, seeds: Iterable[int], detail: str) -> dict[str, Any]:
    return {"flag": name, "seeds": list(seeds), "detail": detail}


def flags(results: list[dict[str, Any]], candidate: Candidate, reference: Reference | None,
          val_tolerance: float, metric: Metric = METRICS["accuracy"]) -> list[dict[str, Any]]:
    """Integrity flags over all seeds of one verification."""
    found = []
    found += _harness_flags(results)
    found += _validation_flags(results, val_tolerance)
    if reference is not None and candidate.label != "solution":
        found += _reference_flags(results, reference, metric)
    return found


def _harness_flags(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    removed = [r["seed"] for r in results if r.get("tampered")]
    if removed:
        found.append(_flag("harness-tampered", removed, "the candidate changed the harness's "
                           "code or removed its hooks during the run; nothing it measured in "
                           "the candidate's process can be trusted"))
    hooked = [r["seed"] for r in results if r.get("gradient_hooks")]
    if hooked:
        found.append(_flag("gradient-hooks", hooked, "hooks on parameters or modules can "
                           "rewrite gradients where the harness does not see them"))
    manual = [r["seed"] for r in results
              if (not r.get("steps") and (r.get("samples") or {}).get("backward_passes"))
              or (r.get("clipping") or {}).get("outside")]
    if manual:
        found.append(_flag("updates-outside-optimizer", manual, "the weights changed where no "
                           "torch.optim step the harness saw ran: they were updated by hand, "
                           "or the step hooks were bypassed"))
    untraced = [r["seed"] for r in results if (r.get("samples") or {}).get("untraced")
                or (r.get("samples") or {}).get("untraced_evaluated")]
    if untraced:
        found.append(_flag("untraced-inputs", untraced, "some inputs the model trained or was "
                           "evaluated on did not come from data.x as tensors (copied through "
                           "NumPy?): they were counted by batch size, and their rows are "
                           "unknown"))
    hooked = [r["seed"] for r in results if (r.get("samples") or {}).get("foreign_output_hooks")]
    if hooked:
        found.append(_flag("output-gradient-hooks", hooked, "a hook on the model's output "
                           "could rescale the gradient before it reaches the weights"))
    return found


def _validation_flags(results: list[dict[str, Any]], tolerance: float) -> list[dict[str, Any]]:
    found = []
    differs = [r["seed"] for r in results if r.get("val_metric") is not None
               and r.get("val/measured") is not None
               and abs(r["val_metric"] - r["val/measured"]) > tolerance / 2]
    if differs:
        found.append(_flag("reported-val-differs", differs, "the metric/val the pipeline "
                           "logged differs from what the returned model scores on the rows "
                           "it validated on"))
    untraced = [r["seed"] for r in results if r.get("val_metric") is not None
                and r.get("status") == "ok" and not r.get("val/rows")]
    if untraced:
        found.append(_flag("validation-untraced", untraced, "metric/val was logged, but no "
                           "development row was only evaluated (every row the model was "
                           "evaluated on was also trained on, or none was traced): the "
                           "harness could not check the figure"))
    gaps = [r for r in results if r.get("val_metric") is not None
            and r.get("test/metric") is not None]
    if gaps and len(gaps) == len(results) and all(r["val_metric"] == r["test/metric"]
                                                  for r in gaps):
        found.append(_flag("zero-val-test-gap", [r["seed"] for r in gaps], "validation equals "
                           "the hidden test exactly on every seed"))
    return found


def _above(test: float, reference: float, metric: Metric) -> bool:
    """Better than the reference fix by more than noise: TEST_METRIC_SLACK for a share
    (accuracy and the like), 5% of the reference's own value for an error or an R2.
    """
    slack = TEST_METRIC_SLACK if metric.task == "classification" else 0.05 * abs(reference)
    return metric.better(test, reference + (slack if metric.higher_is_better else -slack))


def _reference_flags(results: list[dict[str, Any]], reference: Reference,
                     metric: Metric) -> list[dict[str, Any]]:
    found = []
    above, few, same = [], [], []
    for r in results:
        ref = reference.seed(r["seed"]) or {}
        if r.get("status") != "ok":  # a run that crashed is not too good to be true
            continue
        test, ref_test = r.get("test/metric"), ref.get("test_metric")
        if test is not None and ref_test is not None and _above(test, ref_test, metric):
            above.append(r["seed"])
        counted, ref_samples = samples(r), ref.get("samples")
        if counted is not None and ref_samples and counted < FEW_SAMPLES * ref_samples:
            few.append(r["seed"])
        fix_trains_differently = ref.get("loss_digest") != ref.get("shipped_loss_digest")
        if r.get("loss_digest") and r.get("loss_digest") == ref.get("loss_digest") \
                and r.get("torch") == reference.torch and fix_trains_differently:
            same.append(r["seed"])
    if above:
        found.append(_flag("test-above-reference", above, "the hidden-test metric is above "
                           "what the reference fix reaches"))
    if few:
        found.append(_flag("few-gradient-samples", few, f"fewer than {FEW_SAMPLES:.0%} of the "
                           "reference fix's gradient samples"))
    if same and len(same) == len(results):
        found.append(_flag("identical-to-reference", same, "the training curve is identical to "
                           "the reference fix's on every seed"))
    return found


def _digests(paths: Iterable[Path], root: Path | None = None) -> dict[str, str]:
    out = {}
    for path in paths:
        name = path.relative_to(root).as_posix() if root is not None else str(path)
        out[name] = sha256_file(path)
    return out


def provenance(scenario: Scenario, candidate: Candidate, results: list[dict[str, Any]],
               hidden: dict[str, str]) -> dict[str, Any]:
    from . import __version__
    files = sorted(p for p in scenario.path.rglob("*") if p.is_file()
                   and "__pycache__" not in p.parts)
    fixes = ("solution", "decoys", "alternatives")  # named, they would hint at the answer
    shown = [p for p in files if p.relative_to(scenario.path).parts[0] not in fixes]
    fixes_digest = hashlib.sha256("".join(sha256_file(p) for p in files if p not in shown)
                                  .encode()).hexdigest()
    return {
        "candidate": {"label": candidate.label, "files": _digests(candidate.sources),
                      "overrides": list(candidate.overrides)},
        "scenario": {"id": scenario.id, "path": str(scenario.path),
                     "files": _digests(shown, scenario.path), "fixes_digest": fixes_digest},
        "criteria": dataclasses.asdict(scenario.criteria),
        "torch": sorted({r["torch"] for r in results if r.get("torch")}),
        "devices": sorted({r["device"] for r in results if r.get("device")}),
        "python": platform.python_version(),
        "sandbox": __version__,
        "hidden_test": hidden,
    }
