"""Is a documented symptom visible in a run's telemetry? Small rules over logged scalars.

Each rule takes the scalar series of one run (as read back from its TensorBoard event
files) and returns the evidence as a sentence when the symptom shows, else None.
Thresholds follow the literature where it has one (AUTOTRAINER's first/last gradient
ratio of 1e-3 for vanishing gradients) and are stated in the rule otherwise.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable

Series = dict[str, list[tuple[int, float]]]


def _values(series: Series, tag: str) -> list[float]:
    return [v for _, v in series.get(tag, [])]


def diverging(series: Series) -> str | None:
    """Loss becomes non-finite, or ends at least 3x above where it started."""
    loss = _values(series, "loss/train")
    bad = [(s, v) for s, v in series.get("loss/train", []) if not math.isfinite(v)]
    if bad:
        return f"loss/train became {bad[0][1]} at step {bad[0][0]}"
    if len(loss) >= 10 and statistics.fmean(loss[-5:]) > 3 * statistics.fmean(loss[:5]):
        return f"loss/train ended at {loss[-1]:.3g}, over 3x its start {loss[0]:.3g}"
    return None


def not_learning(series: Series) -> str | None:
    """The last tenth of the loss curve is within 10% of the first few steps."""
    loss = [v for v in _values(series, "loss/train") if math.isfinite(v)]
    if len(loss) < 20:
        return None
    start, end = statistics.fmean(loss[:5]), statistics.fmean(loss[-len(loss) // 10:])
    if end > 0.9 * start:
        return f"loss/train went from {start:.3f} to {end:.3f} ({end / start:.0%} of its start)"
    return None


def _natural(tag: str) -> list[int | str]:
    """``grad_norm/net.10`` sorts after ``grad_norm/net.2``: layer order, not string order."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", tag)]


def _layer_norms(series: Series) -> list[tuple[str, float]]:
    layers = sorted((t for t in series if t.startswith("grad_norm/") and t != "grad_norm/global"),
                    key=_natural)
    return [(t, statistics.median(_values(series, t))) for t in layers if series[t]]


def vanishing_gradients(series: Series) -> str | None:
    """Median first-layer gradient norm below 1e-3 of the last layer's (AUTOTRAINER)."""
    norms = _layer_norms(series)
    if len(norms) < 2 or norms[-1][1] <= 0:
        return None
    ratio = norms[0][1] / norms[-1][1]
    if ratio < 1e-3:
        return (f"{norms[0][0]} / {norms[-1][0]} = {ratio:.1e} (median over the run), "
                "below 1e-3")
    return None


def exploding_gradients(series: Series) -> str | None:
    """The global gradient norm grows 100x above its first value, or stops being finite."""
    norms = _values(series, "grad_norm/global")
    if len(norms) < 2 or norms[0] <= 0:
        return None
    peak = max(norms, key=lambda v: v if math.isfinite(v) else math.inf)
    if not math.isfinite(peak) or peak > 100 * norms[0]:
        return f"grad_norm/global rose from {norms[0]:.3g} to {peak:.3g}"
    return None


def large_updates(series: Series) -> str | None:
    """Some layer's update/weight ratio has a median above 0.1 (DeepDiagnosis' threshold;
    healthy training sits near 1e-3): each step rewrites the weights it should nudge.
    """
    ratios = [(t, statistics.median(_values(series, t))) for t in series
              if t.startswith("update_ratio/") and series[t]]
    finite = [(t, r) for t, r in ratios if math.isfinite(r)]
    if finite:
        tag, ratio = max(finite, key=lambda item: item[1])
        if ratio > 0.1:
            return f"{tag} has a median of {ratio:.2g}, above 0.1 (healthy is about 1e-3)"
    return None


def optimistic_validation(series: Series) -> str | None:
    """The pipeline's own validation accuracy is 0.1 or more above the hidden test."""
    val, test = _values(series, "metric/val"), _values(series, "test/metric")
    if val and test and val[-1] - test[-1] >= 0.1:
        return f"metric/val {val[-1]:.3f} vs hidden test/metric {test[-1]:.3f}"
    return None


def eval_batch_dependence(series: Series) -> str | None:
    """Predictions for the same inputs change with the other inputs in the batch."""
    flips = _values(series, "serve/batch_dependence")
    if flips and flips[-1] > 0.01:
        return f"{flips[-1]:.0%} of probe predictions changed with their batch companions"
    return None


RULES: dict[str, Callable[[Series], str | None]] = {
    "diverging": diverging, "not-learning": not_learning,
    "vanishing-gradients": vanishing_gradients, "exploding-gradients": exploding_gradients,
    "large-updates": large_updates,
    "optimistic-validation": optimistic_validation,
    "eval-batch-dependence": eval_batch_dependence,
}


def evidence(symptom: str, series: Series) -> str | None:
    """The rule's evidence for ``symptom`` in ``series``; an unknown id is a KeyError."""
    return RULES[symptom](series)
