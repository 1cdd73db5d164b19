"""The grader's side of a seed: scores computed from the raw predictions it sent back.

The seed's process never sees the hidden labels. It sends class scores for the hidden
inputs, for the batch-dependence probe and for the development rows the pipeline
validated on, plus masks of the rows it trained on and evaluated. Here, with NumPy only,
those become the test metric, the harness's own validation metric, batch dependence
(on the outputs, not only on argmax) and the overlap between training and validation.
Anything malformed makes the seed a failure of the candidate's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import metrics
from .data import Split
from .harness.job import PROBE_SIZE
from .harness.protocol import MalformedMessage, unpack

MEASUREMENTS = ("test/metric", "serve/batch_dependence", "serve/output_shift",
                "serve/repeat_change", "val/measured",
                "val/rows", "val/trained_on", "trained_rows", "split_overlap")


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)


def batch_dependence(first: np.ndarray, second: np.ndarray,
                     scale: float | None = None) -> tuple[float, float]:
    """The share of probes whose answer changed, and the largest change, between two
    servings of the same inputs. Class scores: a changed predicted class, and the largest
    change of a predicted probability. Regression (``scale``, the targets' spread): a
    prediction that moved by over 1% of it, and the largest move in units of it.
    """
    if not (np.isfinite(first).all() and np.isfinite(second).all()):
        return 1.0, 1.0
    if scale is not None:
        moved = np.abs(first - second).max(axis=1) / max(scale, 1e-12)
        return float(np.mean(moved > 0.01)), float(moved.max())
    flips = float(np.mean(first.argmax(axis=1) != second.argmax(axis=1)))
    shift = float(np.abs(softmax(first.astype(np.float64))
                         - softmax(second.astype(np.float64))).max())
    return flips, shift


def masks(rows: dict[str, Any], n: int) -> tuple[np.ndarray, np.ndarray]:
    if rows["n"] != n:
        raise MalformedMessage(f"row masks for {rows['n']} rows, the split has {n}")
    packed = ((n + 7) // 8,)
    trained = np.unpackbits(unpack(rows["trained"], "uint8", packed))[:n].astype(bool)
    evaluated = np.unpackbits(unpack(rows["evaluated"], "uint8", packed))[:n].astype(bool)
    return trained, evaluated


def overlap(trained: np.ndarray, validated: np.ndarray, groups: np.ndarray | None) -> float | None:
    """The share of validation rows whose group the model also trained on."""
    if groups is None or not validated.any():
        return None
    seen = np.isin(groups[validated], np.unique(groups[trained]))
    return float(seen.mean())


def score(result: dict[str, Any], dev: Split, test: Split,
          metric: str = "accuracy") -> dict[str, Any]:
    """The measurements for one seed (None where not measured), the test and the measured
    validation scored on ``metric``. Removes the bulky raw arrays from ``result``; raises
    MalformedMessage when they do not fit what was served.
    """
    found: dict[str, Any] = dict.fromkeys(MEASUREMENTS)
    predictions, rows = result.pop("predictions", None), result.pop("rows", None)
    validated = None
    if rows is not None:
        trained, evaluated = masks(rows, len(dev))
        validated = evaluated & ~trained
        found.update({"trained_rows": int(trained.sum()), "val/rows": int(validated.sum()),
                      "val/trained_on": int((evaluated & trained).sum()),
                      "split_overlap": overlap(trained, validated, dev.groups)})
    if predictions is None:
        return found
    width, probes = test.outputs, min(PROBE_SIZE, len(test))
    found["test/metric"] = metrics.score(
        metric, unpack(predictions["test"], "float32", (len(test), width)), test.y,
        test.num_classes)
    scale = None if test.num_classes else float(np.std(test.y))
    first = unpack(predictions["probe_a"], "float32", (probes, width))
    found["serve/batch_dependence"], found["serve/output_shift"] = batch_dependence(
        first, unpack(predictions["probe_b"], "float32", (probes, width)), scale)
    found["serve/repeat_change"] = batch_dependence(
        first, unpack(predictions["probe_r"], "float32", (probes, width)), scale)[0]
    if validated is not None and validated.any():
        if predictions["val"] is None:
            raise MalformedMessage("rows were validated on, but their predictions are missing")
        n_val = int(validated.sum())
        found["val/measured"] = metrics.score(
            metric, unpack(predictions["val"], "float32", (n_val, width)), dev.y[validated],
            dev.num_classes)
    return found
