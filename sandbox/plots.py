"""The PNG: the broken and the candidate runs seed by seed, against every criterion, with
the evidence the scenario turns on.

Top row: the training loss (the train-loss limit, the step budget) and the validation
metric with each seed's hidden test score (the required score). Bottom row: two or three
evidence panels chosen from the scenario's symptom ids (:data:`SYMPTOM_EVIDENCE`):
per-layer gradient norms and update/weight ratios, the global gradient norm, the
learning rate, dead ReLU units, served outputs' batch dependence, validation against the
hidden test. Each run is a colour family (the shipped pipeline red, the candidate blue),
each seed a shade, a line style and a marker of its own, named in the legend at the top.
A seed that diverged or crashed says so on every panel it is missing from.

The telemetry (``grad_norm/*``, ``update_ratio/*``, ``lr``, ``dead_units/*``) is not in a
result's ``series`` (only what the pipeline logged with ``run.log`` is): it is read back
from the harness's own event files in the seed's folder, about a millisecond a seed.
"""

from __future__ import annotations

import io
import math
import os
import statistics
import textwrap
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator
from matplotlib.transforms import ScaledTranslation

from .files import write_atomic

if TYPE_CHECKING:
    from .catalog import Criteria, Scenario
    from .verification import Verification

BROKEN, CANDIDATE = "#c0392b", "#1f77b4"
PASS_COLOUR = "#1e8449"
THRESHOLD = "#333333"
LOSS_CAP = 1e4  # a diverging run would otherwise squash every other curve to a flat line
STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
FIGSIZE, DPI = (16.0, 10.0), 100  # the PNG is 1600 x 1000 pixels
QUIZ_FIGSIZE = (14.0, 5.2)
FOOTER_WIDTH = 215  # characters of a footer line
MARKER_SPACING = 7.0  # points between two seeds' test markers at the same step
BUDGET_SHOWN = 0.4  # the step-budget line is drawn once the runs reach this share of it
HEALTHY_UPDATE_RATIO = 1e-3

# What each symptom turns on, best first. Views: see EVIDENCE_TITLES.
SYMPTOM_EVIDENCE: dict[str, tuple[str, ...]] = {
    "diverging": ("grad_global", "update_ratio", "lr"),
    "large-updates": ("update_ratio", "lr"),
    "small-updates": ("update_ratio", "lr"),
    "large-early-updates": ("update_early", "lr"),
    "not-learning": ("grad_norm", "update_ratio"),
    "vanishing-gradients": ("grad_norm",),
    "exploding-gradients": ("grad_global", "grad_norm"),
    "sudden-nan": ("grad_global", "update_ratio"),
    "collapsed": ("lr", "grad_global", "dead_units"),
    "oscillating": ("lr", "grad_global"),
    "rising-loss": ("grad_global", "update_ratio"),
    "dead-units": ("dead_units", "grad_norm"),
    "frozen-weights": ("update_ratio", "grad_norm"),
    "lr-collapse": ("lr", "update_ratio"),
    "eval-batch-dependence": ("serving", "validation"),
    "nondeterministic-eval": ("serving", "validation"),
    "optimistic-validation": ("validation",),
    "validation-above-training": ("validation",),
    "flat-validation-metric": ("validation",),
    "overfitting": ("validation",),
}
FALLBACK_EVIDENCE = ("grad_norm", "update_ratio", "lr", "grad_global")
# For the quiz: the same panels whatever the scenario, so they give nothing away.
NEUTRAL_EVIDENCE = ("grad_norm", "update_ratio", "lr")
MIN_EVIDENCE, MAX_EVIDENCE = 2, 3
# Panels that show what a revealing criterion (sandbox.criteria.REVEALING) measures: drawn
# only once the verdict names one of these criteria.
EVIDENCE_REVEALS: dict[str, frozenset[str]] = {
    "serving": frozenset({"batch dependence", "serving mode", "training mode"}),
}
EVIDENCE_TITLES = {
    "grad_norm": "gradient norm by layer, input → output (median, grad_norm/*)",
    "update_ratio": "update/weight ratio by layer, input → output (median)",
    "update_early": "largest update / weight ratio of any layer (update_ratio/*)",
    "grad_global": "global gradient norm (grad_norm/global_max: peak between logs)",
    "lr": "learning rate (lr)",
    "dead_units": "dead ReLU units, worst layer (dead_units/*)",
    "serving": "served output vs batch companions (serve/output_shift)",
    "validation": "validation vs hidden test, per seed",
}


def evidence_for(symptom_ids: Iterable[str], shown: Iterable[str] | None = None) -> list[str]:
    """The evidence panels for these symptoms: each symptom's first choice, then their
    second choices, ..., topped up from :data:`FALLBACK_EVIDENCE` to at least two.

    ``shown``: the criteria the verdict names. A panel that measures what a hidden
    criterion measures (:data:`EVIDENCE_REVEALS`) waits until that criterion is shown, as
    the terminal does: a first look at the broken run must not name the bug's check.
    """
    named = None if shown is None else set(shown)

    def allowed(view: str) -> bool:
        return view not in EVIDENCE_REVEALS or named is None or bool(EVIDENCE_REVEALS[view] & named)

    wanted = [[v for v in SYMPTOM_EVIDENCE.get(s, ()) if allowed(v)] for s in symptom_ids]
    picks: list[str] = []
    for rank in range(max(map(len, wanted), default=0)):
        for views in wanted:
            if rank < len(views) and views[rank] not in picks:
                picks.append(views[rank])
    for view in FALLBACK_EVIDENCE:
        if len(picks) >= MIN_EVIDENCE:
            break
        if view not in picks:
            picks.append(view)
    return picks


# -- one seed of one run ---------------------------------------------------------------


@dataclass
class Trace:
    """One seed of one run, with the colour, line style and marker it has on every panel."""

    result: dict[str, Any]
    run: str
    seed: int
    colour: Any
    style: Any
    marker: str
    order: int  # among all traces: the offset of its test marker
    broken: bool
    _telemetry: dict[str, list[tuple[int, float]]] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"{self.run} seed {self.seed}"

    @property
    def gid(self) -> str:
        return f"trace:{self.run}:{self.seed}"

    def style_kw(self) -> dict[str, Any]:
        """The broken run is drawn above the candidate: where the two coincide (the same
        learning rate, the same training), the red stays visible on the blue.
        """
        return {"color": self.colour, "ls": self.style, "lw": 1.3 if self.broken else 1.5,
                "alpha": 0.9, "gid": self.gid, "zorder": 2.6 if self.broken else 2.2}

    @property
    def telemetry(self) -> dict[str, list[tuple[int, float]]]:
        if self._telemetry is None:
            self._telemetry = read_telemetry(self.result.get("run_dir"))
        return self._telemetry

    def series(self, tag: str) -> list[tuple[int, float]]:
        """A tag's points: the pipeline's own (``series``), else the event files' (a seed
        that crashed reports no series, but what it logged before was flushed).
        """
        points = (self.result.get("series") or {}).get(tag) or self.telemetry.get(tag, [])
        return [(int(s), math.nan if v is None else float(v)) for s, v in points]

    def family(self, prefix: str) -> list[tuple[str, list[tuple[int, float]]]]:
        """Per-layer telemetry (``grad_norm/<layer>``), layers in the order they were
        logged (the optimizer's, input to output), the global norms left out.
        """
        return [(tag[len(prefix) + 1:], points) for tag, points in self.telemetry.items()
                if tag.startswith(prefix + "/")
                and tag[len(prefix) + 1:] not in ("global", "global_max")]

    def why_missing(self) -> str:
        """Why a panel has nothing of this seed: how the run ended, or that it logged none."""
        status, error = self.result.get("status"), self.result.get("error") or ""
        if status == "diverged":
            step = self.result.get("diverged_at")
            return f"diverged at step {step}" if step is not None else "diverged"
        if status == "ok":
            return ""
        return f"{status}: {_clip(error, 70)}" if error else str(status)


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 1] + "…"


def read_telemetry(run_dir: str | os.PathLike | None) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the harness's own event files in a seed's folder (the candidate
    can plant others there: links, FIFOs, giants, which are skipped as the diagnoser
    skips them), read with the diagnoser's reader: tensorboard's ``Event`` protobuf with
    C checksums, about 1 ms a seed where tensorboard's EventAccumulator takes seconds to
    import.
    """
    if not run_dir:
        return {}
    from .diagnosis.logs import read_files
    from .verification import HARNESS_EVENTS, MAX_DIAGNOSED_BYTES
    try:
        files = sorted(Path(run_dir) / e.name for e in os.scandir(run_dir)
                       if HARNESS_EVENTS.match(e.name) and e.is_file(follow_symlinks=False)
                       and e.stat(follow_symlinks=False).st_size <= MAX_DIAGNOSED_BYTES)
        return read_files(files, ".", Path(run_dir)).scalars if files else {}
    except OSError:
        return {}


def _shades(family: str, n: int) -> list[Any]:
    cmap = colormaps[family]
    if n == 1:
        return [cmap(0.8)]
    return [cmap(0.95 - 0.5 * i / (n - 1)) for i in range(n)]


def traces_of(runs: Sequence[tuple[str, Sequence[dict[str, Any]], bool]]) -> list[Trace]:
    """Traces for ``(run name, results, broken?)`` runs: reds for a broken run, blues for
    the candidate; within a run each seed its own shade, line style and marker.
    """
    traces: list[Trace] = []
    for name, results, broken in runs:
        shades = _shades("Reds" if broken else "Blues", len(results))
        for i, result in enumerate(results):
            traces.append(Trace(result, name, int(result.get("seed", i)), shades[i],
                                STYLES[i % len(STYLES)], MARKERS[i % len(MARKERS)],
                                len(traces), broken))
    return traces


def _finite(points: Iterable[tuple[int, float]], positive: bool = False
            ) -> list[tuple[int, float]]:
    return [(s, v) for s, v in points if math.isfinite(v) and (v > 0 or not positive)]


# -- notes and thresholds ---------------------------------------------------------------


class Note(str):
    """A legend line without a line sample; ``warn``: a seed that is missing or stopped
    (drawn in red), otherwise information (grey).
    """

    warn: bool

    def __new__(cls, text: str, warn: bool = False) -> Note:
        note = super().__new__(cls, text)
        note.warn = warn
        return note


WARN_COLOUR, INFO_COLOUR = "#922b21", "#444444"


def _group_notes(entries: list[tuple[Trace, str]]) -> list[str]:
    """``shipped seeds 0, 2: diverged at step 14, no validation``: one line per run and
    message, not one per seed.
    """
    grouped: dict[tuple[str, str], list[int]] = {}
    for trace, message in entries:
        grouped.setdefault((trace.run, message), []).append(trace.seed)
    lines = []
    for (run, message), seeds in grouped.items():
        who = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"
        lines.append(Note(f"{run} {who}: {message}", warn=True))
    return lines


def _missing(traces: Sequence[Trace], what: str, has: Any) -> list[str]:
    """Notes for the traces that have nothing on a panel: ``has(trace)`` is False."""
    entries = []
    for trace in traces:
        if not has(trace):
            why = trace.why_missing()
            entries.append((trace, f"{why}, {what}" if why else what))
    return _group_notes(entries)


def _legend(ax: Axes, notes: Sequence[str] = (), loc: str = "best") -> None:
    """The panel's thresholds (their own line samples) and notes (text only), placed where
    they cover the least data.
    """
    handles, labels = ax.get_legend_handles_labels()
    keep = [(h, lab) for h, lab in zip(handles, labels, strict=True)
            if not lab.startswith("_")]
    blank = Patch(visible=False)
    items = keep + [(blank, Note("\n".join(textwrap.wrap(n, 78)), getattr(n, "warn", False)))
                    for n in notes]
    if items:
        legend = ax.legend(*zip(*items, strict=True), fontsize=7.5, loc=loc, framealpha=0.9,
                           handlelength=2.2)
        for text, (handle, label) in zip(legend.get_texts(), items, strict=True):
            if handle is blank:
                text.set_color(WARN_COLOUR if getattr(label, "warn", False) else INFO_COLOUR)


def _hline(ax: Axes, y: float, label: str, name: str) -> None:
    ax.axhline(y, color=THRESHOLD, ls=(0, (5, 3)), lw=1.3, label=label, gid=f"threshold:{name}",
               zorder=1)


def _plain_ticks(ax: Axes) -> None:
    """Log axes labelled 0.001, 1, 1e+04 in plain text: matplotlib's 10^x labels go through
    its TeX-like layout engine, a third of the drawing time.
    """
    for axis, scale, (lo, hi) in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()),
                                  (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
        if scale not in ("log", "symlog"):
            continue
        zero = ZERO_AT.get(ax) if axis is ax.yaxis else None
        axis.set_major_formatter(FuncFormatter(
            lambda v, _, zero=zero: "0" if zero is not None and math.isclose(v, zero)
            else f"{v:.3g}"))
        span = hi / lo if scale == "log" and lo > 0 else math.inf
        if span < 300:  # two decades or less: label the minor ticks too (some of them)
            every = span < 4
            axis.set_minor_formatter(FuncFormatter(
                lambda v, _, every=every: _minor_label(v, every)))
        elif span > 1e4 or scale == "symlog":  # many decades: eight unlabelled minor ticks
            axis.set_minor_locator(NullLocator())  # a decade are clutter, and slow to make
        else:
            axis.set_minor_formatter(NullFormatter())


ZERO_AT: weakref.WeakKeyDictionary[Axes, float] = weakref.WeakKeyDictionary()
# axes of a log scale whose bottom tick stands for exactly 0 (a frozen layer, a served
# output that no batch moves), and its value


def _zero_floor(ax: Axes, values: Iterable[float]) -> float:
    """The decade below the smallest positive value: where a log axis draws exactly 0,
    its tick labelled 0 (only where some value is 0).
    """
    values = list(values)
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    floor = 10.0 ** (math.floor(math.log10(min(positive))) - 1) if positive else 1e-12
    if any(v == 0 for v in values):
        ZERO_AT[ax] = floor
    return floor


def _minor_label(value: float, every: bool) -> str:
    """2 and 5 times a power of ten (or every minor tick), on an axis too narrow for its
    decades to label it.
    """
    if value <= 0:
        return ""
    mantissa = round(value / 10 ** math.floor(math.log10(value)), 3)
    return f"{value:.3g}" if every or mantissa in (2.0, 5.0) else ""


def _include(ax: Axes, y: float, log: bool) -> None:
    """Widen the y-axis so a threshold line is on it, with a little room."""
    lo, hi = ax.get_ylim()
    if log and y > 0:
        lo, hi = min(lo, y / 1.6), max(hi, y * 1.6)
    else:
        pad = 0.05 * max(hi - lo, abs(y), 1e-12)
        lo, hi = min(lo, y - pad), max(hi, y + pad)
    ax.set_ylim(lo, hi)


# -- top row ------------------------------------------------------------------------------


def _last_step(trace: Trace) -> int | None:
    steps = [s for tag in ("metric/val", "loss/train") for s, _ in trace.series(tag)]
    return max(steps) if steps else None


def _budget(axes: Sequence[Axes], traces: Sequence[Trace], criteria: Criteria | None) -> str:
    """The step budget: a vertical line where the runs come near it, else a note."""
    if criteria is None:
        return ""
    reach = max([s or 0 for s in map(_last_step, traces)], default=0)
    text = f"step budget: {criteria.max_steps} optimizer steps, {criteria.max_samples} samples"
    if reach < BUDGET_SHOWN * criteria.max_steps:
        return f"{text} (off the right of this axis)"
    for i, ax in enumerate(axes):
        ax.axvline(criteria.max_steps, color=THRESHOLD, ls=(0, (1, 2)), lw=1.3,
                   gid="threshold:budget", label=text if i == 0 else "_budget", zorder=1)
        ax.set_xlim(right=max(ax.get_xlim()[1], criteria.max_steps * 1.03))
    return ""


def _loss_panel(ax: Axes, traces: Sequence[Trace], criteria: Criteria | None,
                shown: set[str]) -> list[str]:
    ax.set_gid("loss")
    notes: list[str] = []
    capped = negative = False
    for trace in traces:
        points = _finite(trace.series("loss/train"))
        negative = negative or any(v <= 0 for _, v in points)
        capped = capped or any(v > LOSS_CAP for _, v in points)
        drawn = [(s, min(v, LOSS_CAP)) for s, v in points]
        if drawn:
            ax.plot(*zip(*drawn, strict=True), **trace.style_kw())
        if trace.result.get("status") == "diverged":
            step = trace.result.get("diverged_at") or (drawn[-1][0] if drawn else 0)
            top = max([v for _, v in drawn], default=1.0)
            ax.plot(step, top, "X", color=trace.colour, ms=11, mec="black", mew=0.6,
                    clip_on=False, zorder=5, gid=f"{trace.gid}:diverged")
    notes += _missing(traces, "no finite loss/train", lambda t: _finite(t.series("loss/train")))
    notes += _group_notes([(t, f"diverged (X): "
                            f"{_clip(t.result.get('error') or 'non-finite loss', 60)}")
                           for t in traces if t.result.get("status") == "diverged"
                           and _finite(t.series("loss/train"))])
    ax.set_yscale("symlog", linthresh=1e-3) if negative else ax.set_yscale("log")
    if criteria is not None and "train loss" in shown:
        _hline(ax, criteria.train_loss_max, f"required: final train loss <= "
               f"{criteria.train_loss_max:g} (mean of its last tenth)", "train loss")
        _include(ax, criteria.train_loss_max, not negative)
    if capped:
        notes.append(f"losses above {LOSS_CAP:g} are drawn at {LOSS_CAP:g}")
    ax.set_xlabel("step")
    ax.set_title("training loss (loss/train)", y=1.0)
    return notes


def _test_marker_x(trace: Trace) -> int | None:
    val = trace.series("metric/val")
    return val[-1][0] if val else _last_step(trace)


def _metric_panel(ax: Axes, traces: Sequence[Trace], criteria: Criteria,
                  shown: set[str]) -> list[str]:
    ax.set_gid("metric")
    metric = criteria.test_metric
    values: list[float] = []
    for trace in traces:
        val = _finite(trace.series("metric/val"))
        if val:
            ax.plot(*zip(*val, strict=True), **trace.style_kw())
            values += [v for _, v in val]
    n = len(traces)
    tests: dict[str, list[tuple[int, float]]] = {}
    for trace in traces:
        test, x = trace.result.get("test/metric"), _test_marker_x(trace)
        if test is None or x is None or not math.isfinite(test):
            continue
        where = _offset(ax, trace, n)
        ax.plot([x], [test], ls="none", marker=trace.marker, ms=8, mfc="white",
                mec=trace.colour, mew=2, transform=where, zorder=4, clip_on=False,
                gid=f"{trace.gid}:test")
        tests.setdefault(trace.run, []).append((trace.seed, test))
        values.append(test)
    notes = []
    for run, scores in tests.items():
        rounded = [round(v, 4) for _, v in scores]
        if len(scores) > 1 and len(set(rounded)) == 1:
            text = f"{len(scores)} seeds at {rounded[0]:.4f}"
            x = max(_test_marker_x(t) or 0 for t in traces if t.run == run)
            ax.annotate(text, (x, rounded[0]), textcoords="offset points",
                        xytext=(-8 - MARKER_SPACING * n / 2, 9), ha="right", fontsize=8,
                        color=next(t.colour for t in traces if t.run == run),
                        gid=f"same-test:{run}")
            notes.append(f"hidden test, {run}: {text}")
        else:
            notes.append(f"hidden test, {run}: " + ", ".join(
                f"seed {s} {v:.4f}" for s, v in scores))
    lacks = []
    for trace in traces:
        what = [w for w, has in (("no metric/val logged", _finite(trace.series("metric/val"))),
                                 ("no hidden test score", trace.result.get("test/metric")
                                  is not None)) if not has]
        if what:
            why = trace.why_missing()
            lacks.append((trace, ", ".join([why] * bool(why) + what)))
    if lacks and not values:  # nothing at all on the panel: say why in the middle of it
        ax.text(0.5, 0.5, "\n".join(_group_notes(lacks)), transform=ax.transAxes,
                ha="center", va="center", fontsize=10, color=WARN_COLOUR, wrap=True,
                gid="empty-note")
    else:
        notes += _group_notes(lacks)
    label = metric.label
    if f"test {label}" in shown:
        _hline(ax, criteria.test_threshold,
               f"required: hidden test {label} {criteria.test_required()}", "test")
    positive = [v for v in values if v > 0]
    if metric.task == "classification":  # scores in [0, 1]: down to the lowest, in tenths
        lowest = min([*values, criteria.test_threshold])
        ax.set_ylim(max(0.0, math.floor(lowest * 10 - 0.5) / 10) - 0.02, 1.02)
    else:
        if positive and len(positive) == len(values) and max(positive) / min(positive) > 30:
            ax.set_yscale("log")
        _include(ax, criteria.test_threshold, ax.get_yscale() == "log")
    ax.set_xlabel("step")
    # metric/val is whatever the pipeline logs (plain accuracy, say): only the hidden test
    # is scored by the criterion's metric, so only it is named by that metric
    ax.set_title(f"validation (metric/val, lines) and hidden test {label} (markers)", y=1.0)
    return notes


# -- evidence ------------------------------------------------------------------------------


def _has(traces: Sequence[Trace], view: str) -> bool:
    if view in ("grad_norm", "update_ratio", "update_early", "dead_units"):
        prefix = {"update_early": "update_ratio"}.get(view, view)
        return any(t.family(prefix) for t in traces)
    if view == "grad_global":
        return any(t.telemetry.get("grad_norm/global_max") or t.telemetry.get("grad_norm/global")
                   for t in traces)
    if view == "lr":
        return any(t.telemetry.get("lr") for t in traces)
    if view == "serving":
        return any(t.result.get("serve/output_shift") is not None for t in traces)
    if view == "validation":
        return any(t.result.get("test/metric") is not None for t in traces)
    return False


def choose_evidence(wanted: Sequence[str], traces: Sequence[Trace]) -> list[str]:
    """The views to draw: the wanted ones that have data, topped up to at least two from
    the fallback; a wanted view without data in any run is drawn (with its note) only
    when nothing else could be.
    """
    views = [v for v in wanted if _has(traces, v)][:MAX_EVIDENCE]
    for view in FALLBACK_EVIDENCE:
        if len(views) >= MIN_EVIDENCE:
            break
        if view not in views and _has(traces, view):
            views.append(view)
    return views or list(wanted[:1])


def _layers_in_order(per_trace: list[list[str]]) -> list[str]:
    """The union of each run's layer lists, each kept in its own (input to output) order."""
    order: list[str] = []
    for names in per_trace:
        at = 0
        for name in names:
            if name in order:
                at = order.index(name) + 1
            else:
                order.insert(at, name)
                at += 1
    return order


def _short(name: str, n: int = 16) -> str:
    return name if len(name) <= n else "…" + name[-(n - 1):]


def _profile(ax: Axes, traces: Sequence[Trace], prefix: str, what: str) -> list[str]:
    """One line per seed across the layers, input to output: the median of each layer's
    logged values (a median of exactly 0, which a log axis cannot show, hollow on the
    bottom tick, labelled 0, and not joined to the line).
    """
    medians: dict[str, dict[str, float]] = {}
    for trace in traces:
        layers = {}
        for layer, points in trace.family(prefix):
            finite = [v for _, v in _finite(points)]
            if finite:
                layers[layer] = statistics.median(finite)
        medians[trace.gid] = layers
    order = _layers_in_order([list(m) for m in medians.values()])
    zero = any(v <= 0 for m in medians.values() for v in m.values())
    floor = _zero_floor(ax, [v for m in medians.values() for v in m.values()]) if zero else 0
    for trace in traces:
        layers = medians[trace.gid]
        line = [(order.index(name), v) for name, v in layers.items() if v > 0]
        if line:
            ax.plot(*zip(*line, strict=True), marker=trace.marker, ms=5, **trace.style_kw())
        zeros = [(order.index(n), floor) for n, v in layers.items() if v <= 0]
        if zeros:
            ax.plot(*zip(*zeros, strict=True), ls="none", marker=trace.marker, ms=9,
                    mfc="white", mec=trace.colour, gid=f"{trace.gid}:zero")
    ax.set_yscale("log")
    if zero:
        ax.set_ylim(bottom=floor / 2)
    step = max(1, math.ceil(len(order) / 14))
    ax.set_xticks(range(0, len(order), step))
    labels = [_short(n) for n in order[::step]]
    long = max(map(len, labels), default=0) > 4
    ax.set_xticklabels(labels, rotation=30 if long else 0, ha="right" if long else "center",
                       fontsize=7.5)
    notes = _missing(traces, f"no {prefix}/* logged", lambda t: medians[t.gid])
    if zero:
        notes.append(f"hollow on the 0 tick: a median of exactly 0 ({what})")
    return notes


def _over_steps(ax: Axes, traces: Sequence[Trace], get: Any, tag: str,
                log: bool = True) -> list[str]:
    drew: dict[str, bool] = {}
    for trace in traces:
        points = _finite(get(trace), positive=log)
        drew[trace.gid] = bool(points)
        if points:
            ax.plot(*zip(*points, strict=True), **trace.style_kw())
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    return _missing(traces, f"no {tag} logged", lambda t: drew[t.gid])


def _worst_layer(trace: Trace, prefix: str) -> list[tuple[int, float]]:
    """Each logged step's largest value over the layers."""
    worst: dict[int, float] = {}
    for _, points in trace.family(prefix):
        for s, v in _finite(points):
            worst[s] = max(worst.get(s, -math.inf), v)
    return sorted(worst.items())


def _per_seed_positions(ax: Axes, traces: Sequence[Trace]) -> None:
    ax.set_xticks(range(len(traces)))
    ax.set_xticklabels([f"{t.run}\nseed {t.seed}" for t in traces], fontsize=7.5)
    ax.set_xlim(-0.6, len(traces) - 0.4)


def _serving(ax: Axes, traces: Sequence[Trace], criteria: Criteria | None,
             shown: set[str]) -> list[str]:
    """Per seed: the largest change of a served output when the same input is served
    with other batch companions (exactly 0 for a fixed function of each input: hollow, on
    the bottom tick, labelled 0).
    """
    shifts = {t.gid: t.result.get("serve/output_shift") for t in traces}
    limit = criteria.max_batch_dependence if criteria is not None else None
    floor = _zero_floor(ax, [*[v for v in shifts.values() if v is not None],
                             *([limit] if limit and "batch dependence" in shown else [])])
    for i, trace in enumerate(traces):
        shift = shifts[trace.gid]
        if shift is None:
            continue
        ax.plot([i], [max(shift, floor)], ls="none", marker=trace.marker, ms=10,
                color=trace.colour, mfc=trace.colour if shift > 0 else "white",
                gid=f"{trace.gid}:serving")
        ax.annotate(f"{shift:.2g}", (i, max(shift, floor)), textcoords="offset points",
                    xytext=(0, 8), ha="center", fontsize=7.5)
    ax.set_yscale("log")
    if limit is not None and "batch dependence" in shown:
        _hline(ax, limit, f"required: a served output moves <= {limit:g} with the batch",
               "batch dependence")
    top = max([v for v in shifts.values() if v is not None] + [floor * 10])
    ax.set_ylim(floor / 2, top * 8)  # room for the figures above the markers
    _per_seed_positions(ax, traces)
    regression = criteria is not None and criteria.test_metric.task == "regression"
    ax.set_ylabel("largest move, in targets' spreads" if regression
                  else "largest change of a probability")
    notes = _missing(traces, "nothing served", lambda t: shifts[t.gid] is not None)
    if any(v == 0 for v in shifts.values()):
        notes.append("hollow on the 0 tick: exactly 0, the same output in any batch")
    return notes


def _offset(ax: Axes, trace: Trace, n: int) -> Any:
    """Data coordinates shifted sideways by the trace's place among ``n``: seeds with the
    same score stand side by side instead of on top of each other.
    """
    dx = (trace.order - (n - 1) / 2) * MARKER_SPACING / 72
    return ax.transData + ScaledTranslation(dx, 0, ax.figure.dpi_scale_trans)


def _validation(ax: Axes, traces: Sequence[Trace], criteria: Criteria | None,
                shown: set[str]) -> list[str]:
    """Per seed, x the hidden test, y what validation said (filled) and what the harness
    measured on the same rows (hollow): honest validation keeps both in the band.
    """
    xs: list[float] = []
    for trace in traces:
        test, val = trace.result.get("test/metric"), trace.result.get("val_metric")
        measured = trace.result.get("val/measured")
        if test is None or not math.isfinite(test):
            continue
        xs.append(test)
        where = _offset(ax, trace, len(traces))
        if val is not None and math.isfinite(val):
            ax.plot([test], [val], ls="none", marker=trace.marker, ms=9, color=trace.colour,
                    gid=f"{trace.gid}:val", transform=where)
            xs.append(val)
        if measured is not None and math.isfinite(measured):
            ax.plot([test], [measured], ls="none", marker=trace.marker, ms=7, mfc="white",
                    mec=trace.colour, mew=1.5, gid=f"{trace.gid}:measured", transform=where)
            xs.append(measured)
            if val is not None and math.isfinite(val):
                ax.plot([test, test], [val, measured], color=trace.colour, lw=0.8,
                        gid=f"{trace.gid}:gap", transform=where)
    if xs:
        lo, hi = min(xs), max(xs)
        pad = max(0.05 * (hi - lo), criteria.val_tolerance if criteria else 0.02, 1e-3)
        lo, hi = lo - pad, hi + pad
        ax.plot([lo, hi], [lo, hi], color="#888888", lw=0.8, gid="diagonal", label="_diag")
        if criteria is not None and "honest validation" in shown:
            tol = criteria.val_tolerance
            ax.fill_between([lo, hi], [lo - tol, hi - tol], [lo + tol, hi + tol],
                            color="#999999", alpha=0.18, gid="threshold:val tolerance",
                            label=f"required: val, measured val and test within {tol:g}")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    ax.set_xlabel("hidden test")
    ax.set_ylabel("validation: reported (filled), measured (hollow)")
    return _missing(traces, "no hidden test score",
                    lambda t: t.result.get("test/metric") is not None)


def _evidence_panel(ax: Axes, view: str, traces: Sequence[Trace], criteria: Criteria | None,
                    shown: set[str]) -> list[str]:
    ax.set_gid(f"evidence:{view}")
    ax.set_title(EVIDENCE_TITLES[view], fontsize=10, y=1.0)  # y: no title-placement pass
    if view == "grad_norm":
        return _profile(ax, traces, "grad_norm", "no gradient reached the layer")
    if view == "update_ratio":
        notes = _profile(ax, traces, "update_ratio", "its weights did not move")
        ax.axhline(HEALTHY_UPDATE_RATIO, color="#27ae60", lw=1, ls=(0, (2, 2)),
                   label=f"healthy: about {HEALTHY_UPDATE_RATIO:g} (a guide, not a criterion)",
                   gid="guide:update ratio")
        _include(ax, HEALTHY_UPDATE_RATIO, True)
        return notes
    if view == "update_early":
        notes = _over_steps(ax, traces, lambda t: _worst_layer(t, "update_ratio"),
                            "update_ratio/*")
        ax.set_xscale("log")
        ax.axhline(HEALTHY_UPDATE_RATIO, color="#27ae60", lw=1, ls=(0, (2, 2)),
                   label=f"healthy: about {HEALTHY_UPDATE_RATIO:g} (a guide, not a criterion)",
                   gid="guide:update ratio")
        return notes
    if view == "grad_global":
        return _over_steps(ax, traces, lambda t: t.telemetry.get("grad_norm/global_max")
                           or t.telemetry.get("grad_norm/global", []), "grad_norm/global")
    if view == "lr":
        return _over_steps(ax, traces, lambda t: t.telemetry.get("lr", []), "lr")
    if view == "dead_units":
        notes = _over_steps(ax, traces, lambda t: _worst_layer(t, "dead_units"),
                            "dead_units/* (only nn.ReLU modules are watched)", log=False)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("share of the layer's units")
        return notes
    if view == "serving":
        return _serving(ax, traces, criteria, shown)
    if view == "validation":
        return _validation(ax, traces, criteria, shown)
    raise ValueError(f"unknown evidence view {view!r}")


# -- the figures -------------------------------------------------------------------------


def _layout(fig: Figure, n_evidence: int, top: float, bottom: float
            ) -> tuple[Axes, Axes, list[Axes]]:
    cols = 6
    grid = fig.add_gridspec(2 if n_evidence else 1, cols, left=0.06, right=0.985, top=top,
                            bottom=bottom, hspace=0.42, wspace=0.9)
    loss = fig.add_subplot(grid[0, :cols // 2])
    metric = fig.add_subplot(grid[0, cols // 2:])
    width = cols // max(n_evidence, 1)
    evidence = [fig.add_subplot(grid[1, i * width:(i + 1) * width]) for i in range(n_evidence)]
    return loss, metric, evidence


def _seed_legend(fig: Figure, traces: Sequence[Trace], y: float) -> None:
    handles = [Line2D([], [], color=t.colour, ls=t.style, lw=1.8, marker=t.marker, ms=7,
                      mfc="white", mec=t.colour, mew=1.5, label=t.label) for t in traces]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, y),
               ncol=min(len(handles), 6), fontsize=9, frameon=False, handlelength=3)


def draw_figure(traces: Sequence[Trace], criteria: Criteria, title: str, *,
                title_colour: str = "black", evidence: Sequence[str] = (),
                shown: Iterable[str] | None = None, footer: str = "",
                figsize: tuple[float, float] = FIGSIZE) -> Figure:
    """The figure itself (not yet a PNG), for tests to inspect. ``shown``: the criteria
    whose thresholds are drawn (the ones the terminal shows; default every outcome
    criterion, none that names a bug); ``evidence``: the views wanted, best first.
    """
    if shown is None:
        from .criteria import NAMES, REVEALING
        shown = set(NAMES) - REVEALING
    shown = set(shown)
    views = choose_evidence(list(evidence), traces) if evidence else []
    fig = Figure(figsize=figsize, dpi=DPI)
    footer_lines = footer.count("\n") + 1 if footer else 0
    height = figsize[1]
    top = 1 - (0.95 / height) - (0.3 / height)  # the title, then the seeds' legend
    footer_top = 0.12 + 0.16 * footer_lines  # inches
    bottom = (footer_top + (0.85 if views else 0.6)) / height  # room for ticks and labels
    loss, metric, panels = _layout(fig, len(views), top, bottom)
    notes = {loss: _loss_panel(loss, traces, criteria, shown),
             metric: _metric_panel(metric, traces, criteria, shown)}
    budget = _budget([loss, metric], traces, criteria)
    left, right = zip(loss.get_xlim(), metric.get_xlim(), strict=True)
    for ax in (loss, metric):  # one step axis (not sharex: it doubles the tick layout)
        ax.set_xlim(min(left), max(right))
    if budget:
        notes[loss].append(budget)
    for ax, view in zip(panels, views, strict=True):
        notes[ax] = _evidence_panel(ax, view, traces, criteria, shown)
    for ax, lines in notes.items():
        ax.grid(alpha=0.3)
        _plain_ticks(ax)
        _legend(ax, lines)
    fig.suptitle(title, color=title_colour, fontsize=13, fontweight="bold",
                 y=1 - 0.2 / height)
    if traces:
        _seed_legend(fig, traces, 1 - 0.62 / height)
    if footer:
        fig.text(0.06, 0.12 / height, footer, fontsize=8, va="bottom", ha="left",
                 color="#333333", gid="footer")
    return fig


def _criteria_footer(outcome: Verification) -> str:
    """Every criterion the terminal shows, what it requires and how many of the
    candidate's seeds meet it.
    """
    if not outcome.seeds:
        return ""
    parts = []
    for name in outcome.shown_checks:
        checks = [c for s in outcome.seeds for c in s.checks if c.name == name]
        met = sum(c.passed for c in checks)
        parts.append(f"{name} ({checks[0].required}): {met}/{len(checks)}"
                     + ("" if met == len(checks) else " FAIL"))
    lines = [[f"Criteria, {outcome.candidate}'s seeds that meet each: {parts[0]}"]]
    for part in parts[1:]:  # wrapped between criteria, never inside one
        if sum(len(p) + 5 for p in lines[-1]) + len(part) > FOOTER_WIDTH:
            lines.append([])
        lines[-1].append(part)
    return "\n".join("  ·  ".join(line) for line in lines)


def curves_figure(scenario: Scenario, outcome: Verification) -> Figure:
    """The verification's figure: the broken run (when the candidate is another) and the
    candidate, every seed of each, every criterion, the evidence of the symptoms.
    """
    if outcome.candidate == "shipped":
        runs = [("shipped", outcome.results, True)]
    else:
        runs = [("shipped", outcome.baseline, True), (outcome.candidate, outcome.results, False)]
    traces = traces_of([r for r in runs if r[1]])
    n_pass = sum(s.passed for s in outcome.seeds)
    verdict = "PASS" if outcome.passed else "FAIL"
    detail = "" if outcome.passed else "  failed: " + ", ".join(outcome.shown_failed)
    title = (f"{scenario.id}: {outcome.candidate} - {verdict} "
             f"({n_pass}/{len(outcome.seeds)} seeds){detail}")
    return draw_figure(traces, scenario.criteria, title,
                       title_colour=PASS_COLOUR if outcome.passed else BROKEN,
                       evidence=evidence_for(scenario.symptom_ids, outcome.shown_checks),
                       shown=set(outcome.shown_checks) if outcome.seeds else None,
                       footer=_criteria_footer(outcome))


def draw_curves(scenario: Scenario, outcome: Verification) -> bytes:
    """The PNG's bytes: the caller writes them where the grader can trust the folder."""
    return _png(curves_figure(scenario, outcome))


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=DPI, format="png")
    return buffer.getvalue()


def quiz_figure(result: dict[str, Any], criteria: Criteria, title: str, *,
                evidence: Sequence[str] = ()) -> Figure:
    """One run's figure under a neutral title. ``evidence``: panels to add (pass
    :data:`NEUTRAL_EVIDENCE`, the same for every scenario, so the panels themselves give
    nothing away); the thresholds are only those of the outcome criteria.
    """
    traces = traces_of([("the run", [result], True)])
    return draw_figure(traces, criteria, title, evidence=evidence,
                       figsize=FIGSIZE if evidence else QUIZ_FIGSIZE)


def draw_quiz(path: Path, result: dict[str, Any], criteria: Criteria, title: str, *,
              evidence: Sequence[str] = ()) -> Path:
    """One run's curves under a neutral title: the quiz must not name the scenario."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, _png(quiz_figure(result, criteria, title, evidence=evidence)))
    return path
