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

from .catalog import Criteria

if TYPE_CHECKING:
    from .reference import Reference

NAMES = ("completes", "finite loss", "train loss", "test accuracy", "honest validation",
         "budget", "capacity", "gradient clipping", "serving mode", "batch dependence",
         "split overlap")
# These name the bug they guard against. The terminal shows them only once a seed meets
# every other criterion, i.e. when they are the reason a fix is refused (``--json``
# always has them): the first verification of the shipped pipeline must not give the
# answer away.
REVEALING = frozenset({"gradient clipping", "serving mode", "batch dependence",
                       "split overlap"})


@dataclass(frozen=True)
class Check:
    """One criterion on one seed: what was required, what was measured."""

    name: str
    required: str
    measured: str
    passed: bool


def _fmt(value: float | None, digits: int = 3) -> str:
    return "not measured" if value is None else f"{value:.{digits}g}"


def samples(result: dict[str, Any]) -> int | None:
    """Rows gradients flowed back to, summed over backward passes (traced or not)."""
    counted = result.get("samples")
    if not counted or not counted.get("backward_passes"):
        return None
    return counted["traced"] + counted["untraced"]


def judge(result: dict[str, Any], criteria: Criteria,
          reference: tuple[Reference | None, str | None] = (None, None)) -> list[Check]:
    """Every criterion for one seed's result, failed ones saying by how much."""
    checks = [_completes(result), _finite(result), _train_loss(result, criteria),
              _test(result, criteria), _honest_validation(result, criteria),
              _budget(result, criteria)]
    if criteria.params_tolerance is not None:
        checks.append(_capacity(result, criteria.params_tolerance, reference))
    if criteria.max_clipped_fraction is not None:
        checks.append(_clipping(result, criteria.max_clipped_fraction))
    if criteria.serve_eval_mode:
        checks.append(_serving_mode(result))
    if criteria.max_batch_dependence is not None:
        checks.append(_batch_dependence(result, criteria.max_batch_dependence))
    if criteria.max_split_overlap is not None:
        checks.append(_split_overlap(result, criteria.max_split_overlap))
    return checks


def _completes(result: dict[str, Any]) -> Check:
    ok = result["status"] == "ok"
    return Check("completes", "returns a model",
                 "completed" if ok else f"no: {result.get('error')}", ok)


def _finite(result: dict[str, Any]) -> Check:
    if result["status"] == "diverged":
        return Check("finite loss", "finite", result.get("error") or "non-finite", False)
    if not result.get("train_loss_points"):
        return Check("finite loss", "finite", "no loss/train was logged", False)
    final = result.get("train_loss_final")
    return Check("finite loss", "finite", f"finite ({result['train_loss_points']} values)",
                 final is not None and math.isfinite(final))


def _train_loss(result: dict[str, Any], criteria: Criteria) -> Check:
    final = result.get("train_loss_final")
    return Check("train loss", f"<= {criteria.train_loss_max:g}", _fmt(final),
                 final is not None and final <= criteria.train_loss_max)


def _test(result: dict[str, Any], criteria: Criteria) -> Check:
    test = result.get("test/metric")
    return Check("test accuracy", f">= {criteria.test_metric_min:g}", _fmt(test),
                 test is not None and test >= criteria.test_metric_min)


def _honest_validation(result: dict[str, Any], criteria: Criteria) -> Check:
    """The validation estimate predicts the hidden test, and it is what the returned model
    really scores on the rows the pipeline validated on (measured by the harness), so an
    invented ``metric/val`` cannot pass where the real one would not.
    """
    required = f"val, measured val and test within {criteria.val_tolerance:g}"
    test, reported, measured = (result.get("test/metric"), result.get("val_metric"),
                                result.get("val/measured"))
    if reported is None:
        return Check("honest validation", required, "no metric/val was logged", False)
    if test is None:
        return Check("honest validation", required, "not measured", False)
    figures = [reported, test] + ([measured] if measured is not None else [])
    spread = max(figures) - min(figures)
    text = f"off by {spread:.3f} (val {reported:.3f}"
    text += f", measured {measured:.3f} on {result.get('val/rows')} rows" if measured is not None \
        else ", rows not traced"
    text += f", test {test:.3f})"
    return Check("honest validation", required, text,
                 math.isfinite(spread) and spread <= criteria.val_tolerance)


def _budget(result: dict[str, Any], criteria: Criteria) -> Check:
    """Gradient samples (however the updates are written), optimizer steps, parameters."""
    required = f"<= {criteria.max_samples} samples, <= {criteria.max_steps} steps"
    steps, counted, tampered = result.get("steps"), samples(result), result.get("tampered")
    if criteria.max_params is not None:
        required += f", <= {criteria.max_params} params"
    if tampered:
        return Check("budget", required, "not measured: the harness's hooks were removed "
                     f"during train() ({', '.join(tampered)})", False)
    if counted is None:
        why = "no gradient reached a torch.nn.Module's output" if result.get("samples") else \
            "the run ended before reporting"
        return Check("budget", required, f"not measured: {why}", False)
    measured = f"{counted} samples, {steps} steps"
    passed = counted <= criteria.max_samples and steps is not None and steps <= criteria.max_steps
    if criteria.max_params is not None:
        params = (result.get("model") or {}).get("params")
        measured += f", {params if params is not None else '?'} params"
        passed = passed and params is not None and params <= criteria.max_params
    return Check("budget", measured=measured, required=required, passed=passed)


def _weight_shapes(model: dict[str, Any]) -> Counter:
    return Counter(tuple(shape) for shape in model["shapes"] if len(shape) > 1)


def _capacity(result: dict[str, Any], tolerance: float,
              reference: tuple[Reference | None, str | None]) -> Check:
    """The model that runs is the size the scenario locks, not only the config keys."""
    saved, why = reference
    required = f"params within {tolerance:.0%} of the shipped model, same weight shapes"
    model = result.get("model")
    if saved is None or saved.shipped_model is None:
        return Check("capacity", required, f"not measured: {why or 'no shipped model'}", False)
    if model is None:
        return Check("capacity", required, "not measured: no model", False)
    shipped = saved.shipped_model
    change = model["params"] / shipped["params"] - 1
    text = f"{model['params']} params ({change:+.0%} vs {shipped['params']})"
    same_shapes = _weight_shapes(model) == _weight_shapes(shipped)
    if not same_shapes:
        text += "; weight shapes differ"
    return Check("capacity", required, text, same_shapes and abs(change) <= tolerance)


def _clipping(result: dict[str, Any], limit: float) -> Check:
    """Rescaling the gradient on most steps is a smaller learning rate in disguise."""
    required = f"rescaled on <= {limit:.0%} of steps"
    hooks = result.get("gradient_hooks") or []
    clipping = result.get("clipping") or {}
    if hooks:
        return Check("gradient clipping", required, "not measured: gradient hooks can rescale "
                     f"gradients unseen ({', '.join(hooks[:3])})", False)
    known = clipping.get("measured", 0) - clipping.get("unknown", 0)
    if known <= 0:
        return Check("gradient clipping", required, "not measured: no torch.optim step "
                     "followed a backward pass", False)
    share = clipping["rescaled"] / known
    return Check("gradient clipping", required,
                 f"rescaled on {share:.0%} of {known} steps", share <= limit)


def _serving_mode(result: dict[str, Any]) -> Check:
    required = "BatchNorm and dropout in eval mode while predict() serves"
    serving = result.get("serving")
    if serving is None:
        return Check("serving mode", required, "not measured", False)
    if not serving["train_mode"]:
        return Check("serving mode", required, "eval mode", True)
    text = f"training mode: {', '.join(serving['train_mode'][:4])}"
    if serving["buffers_changed"]:
        text += f"; serving changed {len(serving['buffers_changed'])} buffers"
    return Check("serving mode", required, text, False)


def _batch_dependence(result: dict[str, Any], limit: float) -> Check:
    shift = result.get("serve/output_shift")
    return Check("batch dependence", f"served probabilities move <= {limit:g}",
                 "not measured" if shift is None else f"moved up to {shift:.2g}",
                 shift is not None and shift <= limit)


def _split_overlap(result: dict[str, Any], limit: float) -> Check:
    """Validation rows must come from groups (patients, ...) the model never trained on."""
    share, rows = result.get("split_overlap"), result.get("val/rows")
    required = f"<= {limit:.0%} of validation rows share a group with training"
    if share is None:
        why = "no validation rows were traced" if rows == 0 or rows is None else "no groups"
        return Check("split overlap", required, f"not measured: {why}", False)
    return Check("split overlap", required, f"{share:.0%} of {rows} validation rows",
                 share <= limit)
