"""The test metrics a scenario can be scored on, each with its direction.

A task's metric is what the story needs: accuracy says little when one class is 95% of
the rows (balanced accuracy or macro-F1 does), and a forecast is judged by its error
(MAE, RMSE, lower is better) or by R² (higher is better). The grader scores the raw
outputs ``predict`` returned, with NumPy only; outputs that are not finite count
against the candidate (a wrong class, an infinite error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Metric:
    name: str
    label: str  # how verdicts and plots name it
    higher_is_better: bool
    task: str  # the task whose outputs it scores

    def meets(self, value: float | None, threshold: float) -> bool:
        if value is None or value != value:  # None or NaN
            return False
        return value >= threshold if self.higher_is_better else value <= threshold

    def requirement(self, threshold: float) -> str:
        return f"{'>=' if self.higher_is_better else '<='} {threshold:g}"

    def better(self, a: float, b: float) -> bool:
        """Is ``a`` a better score than ``b``?"""
        return a > b if self.higher_is_better else a < b


METRICS = {m.name: m for m in (
    Metric("accuracy", "accuracy", True, "classification"),
    Metric("balanced_accuracy", "balanced accuracy", True, "classification"),
    Metric("macro_f1", "macro-F1", True, "classification"),
    Metric("mae", "MAE", False, "regression"),
    Metric("rmse", "RMSE", False, "regression"),
    Metric("r2", "R2", True, "regression"),
)}
DEFAULT = {"classification": "accuracy", "regression": "mae"}


def score(name: str, outputs: np.ndarray, targets: np.ndarray, classes: int = 0) -> float:
    """``outputs``: class scores (N, classes) or predictions (N, 1); NaN for no rows."""
    import numpy as np

    if not len(targets):
        return float("nan")
    if METRICS[name].task == "regression":
        return _regression(name, outputs.reshape(len(targets)).astype(np.float64),
                           targets.astype(np.float64))
    valid = np.isfinite(outputs).all(axis=1)
    predicted = np.where(valid, outputs.argmax(axis=1), -1)  # not finite: no class at all
    if name == "accuracy":
        return float(np.mean(predicted == targets))
    recalls, f1s = [], []
    for k in range(max(classes, int(targets.max()) + 1)):
        actual, chosen = targets == k, predicted == k
        hits = float(np.sum(actual & chosen))
        if actual.any():
            recalls.append(hits / actual.sum())
        denominator = actual.sum() + chosen.sum()
        if denominator:
            f1s.append(2 * hits / denominator)
    return float(np.mean(recalls if name == "balanced_accuracy" else f1s))


def _regression(name: str, predicted: np.ndarray, targets: np.ndarray) -> float:
    import numpy as np

    if not np.isfinite(predicted).all():
        return float("-inf") if METRICS[name].higher_is_better else float("inf")
    errors = predicted - targets
    if name == "mae":
        return float(np.mean(np.abs(errors)))
    if name == "rmse":
        return float(np.sqrt(np.mean(errors ** 2)))
    spread = float(np.sum((targets - targets.mean()) ** 2))
    return float(1 - np.sum(errors ** 2) / spread) if spread else float("nan")
