"""The criteria: each seed's measurements judged against what the scenario requires.

Outcome criteria apply to every scenario. Root-cause criteria (capacity, clipping,
serving mode, batch dependence, split overlap) apply where the scenario declares them,
and are measured by the harness, so that a fix that only masks the symptom fails with a
line that says why. A criterion that could not be measured fails: "not measured" is
never a pass.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .catalog import Criteria, Scenario
from .metrics import METRICS

if TYPE_CHECKING:
    from .reference import Reference

NAMES = ("completes", "finite loss", "train loss", "test accuracy", "honest validation",
         "budget", "capacity", "gradient clipping", "serving mode", "batch dependence",
         "split overlap", "seeded start", "training mode",
         *(f"test {m.label}" for m in METRICS.values() if m.name != "accuracy"))
# These name the bug they guard against. The terminal shows them only once a seed meets
# every other criterion, i.e. when they are the reason a fix is refused (``--json``
# always has them): the first verification of the shipped pipeline must not give the
# answer away.
REVEALING = frozenset({"gradient clipping", "serving mode", "batch dependence",
                       "split overlap", "training mode"})


@dataclass(frozen=True)
class Check:
    """One criterion on one seed: what was required, what was measured."""

    name: str
    required: str
    measured: str
    passed: bool


def _fmt(value: float | None, digits: int = 3) -> str:
    return "not measured" if value is None else f"{value:.{digits}g}"


def _metric(value: float | None) -> str:
    """Metrics to four places: 0.8797 must not print as the 0.88 it fails to reach."""
    return "not measured" if value is None else f"{value:.4f}"


BATCH_SLACK = 1.1  # rows per optimizer step may exceed the reference's by 10% at most


def samples(result: dict[str, Any]) -> int | None:
    """Rows gradients flowed back to, summed over backward passes (traced or not)."""
    counted = result.get("samples")
    if not counted or not counted.get("backward_passes"):
        return None
    return counted["traced"] + counted["untraced"]


def judge(result: dict[str, Any], scenario: Scenario,
          reference: tuple[Reference | None, str | None] = (None, None)) -> list[Check]:
    """Every criterion for one seed's result, failed ones saying by how much."""
    criteria = scenario.criteria
    batch_locked = any(key.endswith("batch_size") for key in scenario.locked)
    checks = [_completes(result), _finite(result), _train_loss(result, criteria),
              _test(result, criteria), _honest_validation(result, criteria),
              _budget(result, criteria, reference[0] if batch_locked else None)]
    if criteria.params_tolerance is not None:
        checks.append(_capacity(result, criteria.params_tolerance, reference))
    if criteria.max_clipped_fraction is not None:
        checks.append(_clipping(result, criteria.max_clipped_fraction))
    if criteria.serve_eval_mode:
        checks.append(_serving_mode(result))
    if criteria.train_mode:
        checks.append(_training_mode(result))
    if criteria.max_batch_dependence is not None:
        checks.append(_batch_dependence(result, criteria.max_batch_dependence))
    if criteria.max_split_overlap is not None:
        checks.append(_split_overlap(result, criteria.max_split_overlap))
    return checks


def judge_seeds(results: list[dict[str, Any]], scenario: Scenario,
                reference: tuple[Reference | None, str | None] = (None, None)
                ) -> list[list[Check]]:
    """:func:`judge` for every seed, plus, where there are several, that each one started
    from weights of its own: a pipeline that seeds torch itself with a constant turns
    three seeds into one lucky draw of the initial weights.
    """
    return [judge(r, scenario, reference) + ([_seeded_start(r, results)]
                                             if len(results) > 1 else [])
            for r in results]


def _seeded_start(result: dict[str, Any], results: list[dict[str, Any]]) -> Check:
    required = "its own initial weights, drawn from the seed the harness set"
    digest = result.get("start_digest")
    if digest is None:
        return Check("seeded start", required, "not measured: no backward pass through the "
                     "model was seen", False)
    same = [r["seed"] for r in results if r is not result and r.get("start_digest") == digest]
    if same:
        seeds = f"seed{'s' if len(same) > 1 else ''} {', '.join(map(str, same))}"
        return Check("seeded start", required, f"the same initial weights as {seeds}: the "
                     "pipeline seeds the random generator itself instead of using the seed "
                     "it was run with (run.seed)", False)
    return Check("seeded start", required, "its own", True)


def _training_mode(result: dict[str, Any]) -> Check:
    """Every backward pass ran with the model's dropout and BatchNorm layers in training
    mode (a scenario may ask; frozen BatchNorm can be a deliberate choice elsewhere).
    """
    required = "dropout and BatchNorm in training mode at every backward pass"
    modes = result.get("modes") or {}
    if not modes.get("passes"):
        return Check("training mode", required, "not measured: no backward pass through the "
                     "model was seen", False)
    if modes["in_eval"]:
        return Check("training mode", required, f"in eval mode at {modes['in_eval']} of "
                     f"{modes['passes']} backward passes ({', '.join(modes['layers'][:3])})",
                     False)
    return Check("training mode", required, f"training mode at all {modes['passes']}", True)


def _completes(result: dict[str, Any]) -> Check:
    ok = result["status"] == "ok"
    return Check("completes", "returns a model",
                 "completed" if ok else f"no: {result.get('error')}", ok)


def _finite(result: dict[str, Any]) -> Check:
    """The logged loss stays finite, and so do the weights of the returned model (a logged
    curve is the pipeline's word; the weights are measured).
    """
    if result["status"] == "diverged":
        return Check("finite loss", "finite", result.get("error") or "non-finite", False)
    if not result.get("train_loss_points"):
        return Check("finite loss", "finite", "no loss/train was logged", False)
    if (result.get("model") or {}).get("finite") is False:
        return Check("finite loss", "finite", "the returned model has NaN or infinite weights",
                     False)
    final = result.get("train_loss_final")
    return Check("finite loss", "finite", f"finite ({result['train_loss_points']} values)",
                 final is not None and math.isfinite(final))


def _train_loss(result: dict[str, Any], criteria: Criteria) -> Check:
    final = result.get("train_loss_final")
    return Check("train loss", f"<= {criteria.train_loss_max:g}", _fmt(final),
                 final is not None and final <= criteria.train_loss_max)


def _test(result: dict[str, Any], criteria: Criteria) -> Check:
    """Scored by the grader on the scenario's metric, on the side its direction says;
    only answers that come from the model count.
    """
    metric = criteria.test_metric
    name, test, required = f"test {metric.label}", result.get("test/metric"), \
        criteria.test_required()
    if (result.get("serving") or {}).get("uses_model") is False:
        return Check(name, required, "not measured: predict() gives the same answers with "
                     "the model's weights perturbed, so they do not come from the model", False)
    return Check(name, required, _metric(test), metric.meets(test, criteria.test_threshold))


def _honest_validation(result: dict[str, Any], criteria: Criteria) -> Check:
    """The validation estimate predicts the hidden test, and it is what the returned model
    really scores on the rows the pipeline validated on (measured by the harness), so an
    invented ``metric/val`` cannot pass where the real one would not. Rows the harness saw
    evaluated that were all trained on are no validation at all.
    """
    required = f"val, measured val and test within {criteria.val_tolerance:g}"
    test, reported, measured = (result.get("test/metric"), result.get("val_metric"),
                                result.get("val/measured"))
    if reported is None:
        return Check("honest validation", required, "no metric/val was logged", False)
    if test is None:
        return Check("honest validation", required, "not measured", False)
    if result.get("val/rows") == 0 and result.get("val/trained_on"):
        return Check("honest validation", required, "every one of the "
                     f"{result['val/trained_on']} rows evaluated on was also trained on: "
                     "metric/val does not come from held-out data", False)
    figures = [reported, test] + ([measured] if measured is not None else [])
    spread = max(figures) - min(figures)
    text = f"off by {spread:.3f}: val {reported:.3f}"
    text += f", measured {measured:.3f}" if measured is not None else " (rows not traced)"
    text += f", test {test:.3f}"
    return Check("honest validation", required, text,
                 math.isfinite(spread) and spread <= criteria.val_tolerance)


def _budget(result: dict[str, Any], criteria: Criteria,
            reference: Reference | None) -> Check:
    """Gradient samples (however the updates are written), optimizer steps, parameters,
    and where the batch size is locked, the rows per step against the reference fix's.
    """
    required = f"<= {criteria.max_samples} samples, <= {criteria.max_steps} steps"
    steps, counted, tampered = result.get("steps"), samples(result), result.get("tampered")
    if criteria.max_params is not None:
        required += f", <= {criteria.max_params} params"
    if tampered:
        return Check("budget", required, "not measured: the harness's code or hooks were "
                     f"changed during the run ({', '.join(tampered[:3])})", False)
    if counted is None:
        why = "no gradient reached a torch.nn.Module's output" if result.get("samples") else \
            "the run ended before reporting"
        return Check("budget", required, f"not measured: {why}", False)
    passes = result["samples"]["backward_passes"]
    if (steps or 0) > 1.1 * passes + 2:
        return Check("budget", required, f"not measured: {steps} optimizer steps, but only "
                     f"{passes} backward passes through the model were seen (its inputs "
                     "hidden from the harness?)", False)
    measured = f"{counted} samples, {steps} steps"
    passed = counted <= criteria.max_samples and steps is not None and steps <= criteria.max_steps
    batch, limit = _rows_per_step(result, reference)
    if limit is not None:
        required += f", <= {limit:.0f} rows per step"
        measured += f", {batch:.0f} rows per step"
        passed = passed and batch <= limit
    if criteria.max_params is not None:
        params = (result.get("model") or {}).get("params")
        measured += f", {params if params is not None else '?'} params"
        passed = passed and params is not None and params <= criteria.max_params
    return Check("budget", measured=measured, required=required, passed=passed)


def _rows_per_step(result: dict[str, Any],
                   reference: Reference | None) -> tuple[float, float | None]:
    """Rows per update (per optimizer step, or per backward pass without one), and the
    most the locked batch size allows: fewer, larger steps go around the lock too.
    """
    counted, passes = samples(result) or 0, (result.get("samples") or {}).get("backward_passes")
    updates = max(result.get("steps") or 0, 0) or passes or 1
    ref = reference.seed(result["seed"]) if reference is not None else None
    if not ref or not ref.get("samples") or not ref.get("steps"):
        return counted / updates, None
    return counted / updates, BATCH_SLACK * ref["samples"] / ref["steps"]


def _weight_shapes(model: dict[str, Any]) -> Counter:
    return Counter(tuple(shape) for shape in model["shapes"] if len(shape) > 1)


def _capacity(result: dict[str, Any], tolerance: float,
              reference: tuple[Reference | None, str | None]) -> Check:
    """The model that runs is the size the scenario locks: its registered parameters and
    weight shapes, and what was actually trained (tensors an optimizer stepped outside the
    model count; layers that never received a gradient do not).
    """
    saved, why = reference
    required = f"within {tolerance:.0%} of the shipped model's size, same weight shapes"
    model = result.get("model")
    if saved is None or saved.shipped_model is None:
        return Check("capacity", required, f"not measured: {why or 'no shipped model'}", False)
    if model is None:
        return Check("capacity", required, "not measured: no model", False)
    shipped = saved.shipped_model["params"]
    change = model["params"] / shipped - 1
    trained = model.get("trained", model["params"]) / shipped - 1
    text = f"{model['params']} params ({change:+.0%} vs {shipped})"
    same_shapes = _weight_shapes(model) == _weight_shapes(saved.shipped_model)
    if not same_shapes:
        text += "; weight shapes differ"
    if abs(trained) > tolerance:
        text += f"; {model.get('trained')} trained ({trained:+.0%})"
        if model.get("foreign"):
            text += f", {model['foreign']} of them outside the model"
    return Check("capacity", required, text,
                 same_shapes and abs(change) <= tolerance and abs(trained) <= tolerance)


def _clipping(result: dict[str, Any], limit: float) -> Check:
    """Rescaling the gradient on most steps is a smaller learning rate in disguise. The
    steps compared must be most of the optimizer steps, and the weights must not change
    where no optimizer stepped (after a step, or between the backward passes of an
    accumulated step): updates by hand or around torch.optim's step hooks, and gradients
    rescaled before they reach the weights (hooks), leave it unmeasured.
    """
    required = f"rescaled on <= {limit:.0%} of steps"
    hooks = result.get("gradient_hooks") or []
    clipping = result.get("clipping") or {}
    counted = result.get("samples") or {}
    if hooks or counted.get("foreign_output_hooks"):
        where = ", ".join(hooks[:3]) or "the model's output"
        return Check("gradient clipping", required, f"not measured: gradient hooks can rescale "
                     f"gradients unseen ({where})", False)
    steps = clipping.get("steps", 0)
    updates = result.get("steps") or 0
    if not updates:
        return Check("gradient clipping", required, "not measured: no torch.optim step "
                     f"followed the {counted.get('backward_passes', 0)} backward passes",
                     False)
    if not clipping.get("measured") or steps < updates / 2:
        return Check("gradient clipping", required, f"not measured: {steps} of {updates} "
                     "optimizer steps followed a backward pass the harness saw",
                     False)
    if clipping.get("outside"):
        return Check("gradient clipping", required, "not measured: the weights changed "
                     f"outside torch.optim after {clipping['outside']} of the "
                     f"{clipping['measured']} steps compared", False)
    share = clipping["rescaled"] / clipping["measured"]
    return Check("gradient clipping", required,
                 f"rescaled on {share:.0%} of {clipping['measured']} steps compared",
                 share <= limit)


def _serving_mode(result: dict[str, Any]) -> Check:
    """Served predictions come from a fixed function of each input: no BatchNorm with batch
    statistics, no dropout, no running statistics moved by serving.
    """
    required = "no batch statistics, dropout or state change while predict() serves"
    serving = result.get("serving")
    if serving is None:
        return Check("serving mode", required, "not measured", False)
    problems = []
    if serving["train_mode"]:
        problems.append(f"batch statistics or dropout in {', '.join(serving['train_mode'][:3])}")
    if serving["buffers_changed"]:
        problems.append(f"serving changed {len(serving['buffers_changed'])} buffers "
                        f"({', '.join(serving['buffers_changed'][:2])})")
    return Check("serving mode", required, "; ".join(problems) or "fixed per input",
                 not problems)


def _batch_dependence(result: dict[str, Any], limit: float) -> Check:
    shift = result.get("serve/output_shift")
    return Check("batch dependence", f"a served probability moves <= {limit:g} with the batch",
                 "not measured" if shift is None else f"one moved by {shift:.2g}",
                 shift is not None and shift <= limit)


def _split_overlap(result: dict[str, Any], limit: float) -> Check:
    """Validation rows must come from groups (patients, ...) the model never trained on, and
    every training and evaluation input must be traceable to data.x for that to be known.
    """
    share, rows = result.get("split_overlap"), result.get("val/rows")
    counted = result.get("samples") or {}
    required = f"<= {limit:.0%} of validation rows share a group with training"
    untraced = counted.get("untraced", 0) + counted.get("untraced_evaluated", 0)
    if untraced:
        return Check("split overlap", required, f"not measured: {untraced} inputs the model "
                     "trained or was evaluated on do not come from data.x (copied through "
                     "NumPy or lists?); index data.x and keep them tensors", False)
    if share is None:
        why = ("every row the pipeline evaluated was also trained on (a refit on all the "
               "data?), so there is no validation set" if result.get("trained_rows")
               else "no validation rows were traced") if not rows else "no groups"
        return Check("split overlap", required, f"not measured: {why}", False)
    return Check("split overlap", required, f"{share:.0%} of {rows} validation rows",
                 share <= limit)
