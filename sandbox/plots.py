"""The PNG: broken and candidate curves side by side, with the verdict on it."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from .files import write_atomic

if TYPE_CHECKING:
    from .catalog import Criteria, Scenario
    from .verification import Verification

BROKEN, CANDIDATE = "#c0392b", "#1f77b4"
LOSS_CAP = 1e4  # a diverging run would otherwise squash every other curve to a flat line


def _series(result: dict[str, Any], tag: str) -> tuple[list[int], list[float]]:
    """A tag's points; a non-finite value is null in a record read back from JSON."""
    points = result.get("series", {}).get(tag, [])
    return [s for s, _ in points], [math.nan if v is None else v for _, v in points]


def _loss_panel(ax: plt.Axes, runs: list[tuple[dict[str, Any], str, str]]) -> None:
    for result, colour, label in runs:
        steps, values = _series(result, "loss/train")
        finite = [(s, min(v, LOSS_CAP)) for s, v in zip(steps, values, strict=True)
                  if math.isfinite(v) and v > 0]
        if finite:
            ax.plot(*zip(*finite, strict=True), color=colour, lw=1.2, alpha=0.8, label=label)
        if result.get("status") == "diverged" and steps:
            top = max([v for _, v in finite], default=1.0)
            ax.plot(steps[-1], top, "x", color=colour, ms=10, mew=2, clip_on=False)
            ax.annotate(f"non-finite at step {steps[-1]}", (steps[-1], top), color=colour,
                        textcoords="offset points", xytext=(6, -4), fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title("training loss (loss/train)")


def _metric_panel(ax: plt.Axes, runs: list[tuple[dict[str, Any], str, str]],
                  criteria: Criteria) -> None:
    for result, colour, label in runs:
        steps, values = _series(result, "metric/val")
        if steps:
            ax.plot(steps, values, color=colour, lw=1.2, alpha=0.8, label=label)
        test = result.get("test/metric")
        if test is not None and steps:
            ax.plot(steps[-1], test, "o", color=colour, ms=6, mfc="white", mew=1.5)
    metric = criteria.test_metric
    ax.axhline(criteria.test_threshold, color="grey", ls="--", lw=1,
               label=f"required test {metric.label} {criteria.test_required()}")
    if metric.task == "classification":
        ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step")
    ax.set_title(f"validation {metric.label} (line) vs hidden test (circle)")


def draw_curves(scenario: Scenario, outcome: Verification) -> bytes:
    """Left: training loss; right: the pipeline's validation accuracy and the hidden test.
    The PNG's bytes: the caller writes them where the grader can trust the folder.
    """
    runs = [(r, BROKEN, "shipped (broken)" if i == 0 else None)
            for i, r in enumerate(outcome.baseline)]
    if outcome.candidate != "shipped":
        runs += [(r, CANDIDATE, f"{outcome.candidate}" if i == 0 else None)
                 for i, r in enumerate(outcome.results)]
    else:
        runs = [(r, BROKEN, "shipped" if i == 0 else None) for i, r in enumerate(outcome.results)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    _loss_panel(left, runs)
    _metric_panel(right, runs, scenario.criteria)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="best")
    n_pass = sum(s.passed for s in outcome.seeds)
    verdict = "PASS" if outcome.passed else "FAIL"
    detail = "" if outcome.passed else "  failed: " + ", ".join(outcome.shown_failed)
    fig.suptitle(f"{scenario.id}: {outcome.candidate} - {verdict} "
                 f"({n_pass}/{len(outcome.seeds)} seeds){detail}",
                 color="#1e8449" if outcome.passed else BROKEN, fontsize=12, fontweight="bold")
    fig.tight_layout()
    return _png(fig)


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format="png")
    plt.close(fig)
    return buffer.getvalue()


def draw_quiz(path: Path, result: dict[str, Any], criteria: Criteria, title: str) -> Path:
    """One run's curves under a neutral title: the quiz must not name the scenario."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    _loss_panel(left, [(result, BROKEN, "the run")])
    _metric_panel(right, [(result, BROKEN, "the run")], criteria)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=12, fontweight="bold")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, _png(fig))
    return path
