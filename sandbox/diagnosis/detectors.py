"""The symptom rules. Each reads a run's :class:`Curves` and returns ``(step, evidence)``
when its symptom shows, else None. Every threshold is stated with its reason in the rule.

Curve rules compare robust summaries (medians over the first 5% and last 10% of a curve)
rather than single points, so minibatch noise does not decide a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .logs import Series, finite
from .tags import Curves

Rule = Callable[[Curves], "tuple[int | None, str] | None"]


def _head(values: np.ndarray, fraction: float = 0.05) -> float:
    return float(np.median(values[:max(1, int(len(values) * fraction))]))


def _tail(values: np.ndarray, fraction: float = 0.1) -> float:
    return float(np.median(values[-max(1, int(len(values) * fraction)):]))


def _arrays(points: Series) -> tuple[np.ndarray, np.ndarray]:
    points = finite(points)
    return (np.array([s for s, _ in points], dtype=np.int64),
            np.array([v for _, v in points], dtype=np.float64))


EXACT_MEDIAN_UP_TO = 5000  # points; a catalog run has a few hundred


def rolling_median(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running median; the window shrinks at the ends. On long curves it is taken
    at every ``window // 16``-th point and interpolated between: the rules smooth over a
    twentieth of the run, so the median moves little from one point to the next, and a
    window median at every one of a million steps would cost minutes.
    """
    n, half = len(values), window // 2
    stride = 1 if n <= EXACT_MEDIAN_UP_TO else max(1, window // 16)
    centres = np.unique(np.r_[np.arange(0, n, stride), n - 1]) if n else np.arange(0)
    medians = np.array([np.median(values[max(0, i - half):i + half + 1]) for i in centres])
    return medians if stride == 1 else np.interp(np.arange(n), centres, medians)


def _first_non_finite(curves: Curves, *roles: str) -> tuple[int, str] | None:
    hits = [(step, role, value) for role in roles for step, value in getattr(curves, role)
            if not math.isfinite(value)]
    if not hits:
        return None
    step, role, value = min(hits)
    return step, f"{curves.name(role)} became {value} at step {step}"


def diverging(curves: Curves) -> tuple[int | None, str] | None:
    """The loss becomes NaN/inf, or its last 10% sits above twice where it started (more
    than its own starting value above the start, for losses of either sign). Where it
    started is the lower of its first value and the median of its first 5%: a loss that
    blows up within the first steps and stays there must not make the blow-up its own
    baseline. A loss that swings with structure (:func:`oscillating`) and keeps coming
    back to its first value is swinging, not diverging: class-sorted data whose first
    block fills the first 5% of steps gives one, low at the start and high on average.
    """
    broken = _first_non_finite(curves, "train_loss", "val_loss")
    if broken:
        return broken
    steps, values = _arrays(curves.train_loss)
    if len(values) < 10:
        return None
    start, end = _head(values), _tail(values)
    if start > 0:
        start = min(start, float(values[0]))
    if end - start <= max(abs(start), 1e-8):
        return None
    later = values[len(values) // 10:]
    if np.percentile(later, 10) <= values[0] and oscillating(curves) is not None:
        return None
    smooth = rolling_median(values, max(1, len(values) // 20))
    below = np.flatnonzero(smooth <= start)
    since = int(steps[min(below[-1] + 1, len(steps) - 1)]) if len(below) else int(steps[0])
    return since, (f"{curves.name('train_loss')} ended at {end:.4g}, {end / start:.1f}x its "
                   f"start {start:.4g}" if start > 0 else
                   f"{curves.name('train_loss')} rose from {start:.4g} to {end:.4g}")


def _start(values: np.ndarray) -> float:
    """Where a loss started: the median of its first 5%, or its first value if that is
    lower, so that a blow-up within the first steps does not become its own baseline.
    """
    start = _head(values)
    return min(start, float(values[0])) if start > 0 else start


def _smooth(values: np.ndarray) -> np.ndarray:
    return rolling_median(values, max(1, len(values) // 20) | 1)


def _fell_to_half(smooth: np.ndarray, start: float) -> int | None:
    """The index where the smoothed loss first reached half its start, if it did."""
    below = np.flatnonzero(smooth <= 0.5 * start)
    return int(below[0]) if len(below) else None


COLLAPSED_BACK = 0.8


def collapsed(curves: Curves) -> tuple[int | None, str] | None:
    """The loss fell to half its start or less, then climbed back to within 20% of where
    it started and ended there (median of its last 10%): what the model had learned was
    lost. Calling that "not learning" sends people to raise a learning rate that was
    already too high somewhere: a schedule restart or a peak that was too high, a bad
    batch with no clipping, a spike that killed the ReLUs or saturated the output.
    """
    steps, values = _arrays(curves.train_loss)
    if len(values) < 20:
        return None
    start, end = _start(values), _tail(values)
    if start <= 0 or end < COLLAPSED_BACK * start:
        return None
    smooth = _smooth(values)
    low_at = _fell_to_half(smooth, start)
    if low_at is None:
        return None
    lowest = low_at + int(np.argmin(smooth[low_at:]))
    back = np.flatnonzero(smooth[lowest:] >= COLLAPSED_BACK * start)
    if not len(back):
        return None
    at = int(steps[lowest + back[0]])
    return at, (f"{curves.name('train_loss')} fell from {start:.4g} to {smooth[lowest]:.4g} by "
                f"step {int(steps[lowest])}, then climbed back by step {at} and ended at "
                f"{end:.4g} ({end / start:.0%} of its start)")


def not_learning(curves: Curves) -> tuple[int | None, str] | None:
    """The last 10% of the loss is within 10% of its first 5% (AUTOTRAINER calls a run
    whose accuracy gains < 0.01 per epoch slow to converge; on the loss, 10% of the start
    is well outside what noise moves a median of many points). Needs 20 points; a
    validation metric that rose by 0.05 or more overrules it: the model is learning.
    """
    steps, values = _arrays(curves.train_loss)
    if len(values) < 20:
        return None
    start, end = _start(values), _tail(values)
    if start <= 0 or end <= 0.9 * start or _fell_to_half(_smooth(values), start) is not None:
        return None
    _, metric = _arrays(curves.val_metric)
    if len(metric) >= 2 and _improved(curves, metric):
        return None
    chance = next((f"; ln {k} = {math.log(k):.3f} is the loss of a uniform guess over {k} "
                   "classes" for k in range(2, 11) if abs(end - math.log(k)) < 0.01), "")
    return int(steps[0]), (f"{curves.name('train_loss')} went from {start:.4g} to {end:.4g} "
                           f"({end / start:.0%} of its start) over {int(steps[-1])} steps"
                           + chance)


def autocorrelation(residuals: np.ndarray, lags: int) -> np.ndarray:
    r = residuals - residuals.mean()
    denom = float(r @ r)
    if denom == 0:
        return np.zeros(lags)
    return np.array([float(r[:-k] @ r[k:]) / denom for k in range(1, lags + 1)])


OSCILLATION_SWING = 0.5
OSCILLATION_STRUCTURE = 0.8
STEADY_SWING, STEADY_STRUCTURE = 0.25, 1.5  # smaller swings, repeating strongly
SPIKE, SPIKE_STRUCTURE = 3.0, 1.0  # rare spikes of 3x the level, repeating
WINDOW_POINTS = 100


def _swings(values: np.ndarray) -> tuple[float, float, float, int, np.ndarray]:
    """The loss minus its running median (window 5% of the points): the size of its
    swings (10th-90th percentile range over the loss level), their largest spikes (99th
    percentile over the level), their structure (the sum of squared autocorrelations over
    up to 20 lags), the number of lags and the autocorrelations.
    """
    trend = rolling_median(values, max(5, len(values) // 20) | 1)
    swing = values - trend
    level = float(np.median(np.abs(trend)))
    q99, q90, q10 = np.percentile(swing, [99, 90, 10])
    size = float(q90 - q10) / level if level > 0 else 0.0
    spike = float(q99) / level if level > 0 else 0.0
    lags = min(20, len(values) // 5)
    acf = autocorrelation(swing, lags)
    return size, spike, float(np.sum(acf ** 2)), lags, acf


CONVERGED = 0.01  # of the start: a window whose loss sits lower has converged


def _level(values: np.ndarray) -> float:
    return float(np.median(np.abs(values)))


def _windows(n: int) -> list[tuple[int, int]]:
    """The run after its first 10%, then halves of it sliding by a sixth: an oscillation
    that develops in part of the run (data that stops being shuffled on a resume) must
    not be averaged away by the healthy part.
    """
    spans = [(n // 10, n)]
    if n >= 2 * WINDOW_POINTS:
        spans += [(k * n // 6, k * n // 6 + n // 2) for k in range(4)]
    return spans


def oscillating(curves: Curves) -> tuple[int | None, str] | None:
    """Swings that are large and structured, not minibatch noise.

    The swing is the loss minus its running median. Minibatch noise is independent from
    step to step: the sum of its squared autocorrelations over 20 lags is about 20/n
    (under 0.75 in every healthy run of the benchmark and the corpus, in any window, most
    under 0.4). A sawtooth from unshuffled data or an overshooting learning rate repeats
    itself: 1.3 and more. Three shapes count: swings whose 10th-90th percentile range is
    at least 50% of the loss level with structure 0.8 (for Gaussian swings that range is
    an interquartile range of about 26%; a sawtooth whose blocks are long has most of its
    swing in the jumps at the block starts, which an interquartile range does not see);
    smaller swings (25%) that repeat strongly (1.5); and spikes, whose 99th percentile is
    3x the level, that repeat (1.0): full-batch descent past the edge of stability sits
    low and spikes every hundred steps, which a percentile range does not see at all.
    The run after its first 10% is read, then each half of it sliding by a sixth (with
    100 points at least), so that an oscillation in part of the run is not averaged away;
    a half whose loss sits below 1% of the start has converged, and its swings (a tiny
    training set's two batches taking turns) are left out.
    """
    steps, values = _arrays(curves.train_loss)
    if len(values) - len(values) // 10 < 50:
        return None
    start = abs(_start(values))
    for first, last in _windows(len(values)):
        size, spike, structure, lags, acf = _swings(values[first:last])
        if first != len(values) // 10 and _level(values[first:last]) < CONVERGED * start:
            continue  # swings of a loss near zero: two batches taking turns, not a problem
        shape = ("swings" if size >= OSCILLATION_SWING and structure >= OSCILLATION_STRUCTURE
                 else "steady" if size >= STEADY_SWING and structure >= STEADY_STRUCTURE
                 else "spikes" if spike >= SPIKE and structure >= SPIKE_STRUCTURE else None)
        if shape is None:
            continue
        period = int(np.argmax(acf)) + 1
        what = (f"spikes to {spike:.1f}x its level" if shape == "spikes" else
                f"swings by {size:.0%} of its level")
        span = ("" if first == len(values) // 10 else
                f" from step {int(steps[first])} to {int(steps[last - 1])}")
        return int(steps[first]), (
            f"{curves.name('train_loss')}{span} {what} around its running median, and the "
            f"swings repeat (sum of squared autocorrelations {structure:.2f} over {lags} "
            f"lags, noise gives about {lags / (last - first):.2f}; strongest at a lag of "
            f"{period} points)")
    return None


def overfitting(curves: Curves) -> tuple[int | None, str] | None:
    """Validation loss turns up for good while the training loss keeps falling.

    After its minimum come at least three evaluations (a turn that lasts; an early stop
    with patience 2 has already answered one), the last of them average 10% or more above
    the minimum and three times the evaluation noise above it (noise: the median change
    between evaluations, scaled to a standard deviation; a trend only inflates it), and the
    training loss fell over the same span. AUTOTRAINER's ``test_turn_bad`` compares
    consecutive epochs at 0.01, which noisy validation sets trip by chance.
    """
    steps, values = _arrays(curves.val_loss)
    if len(values) < 5:
        return None
    best = int(np.argmin(values))
    after = len(values) - 1 - best
    if after < 3:
        return None
    end = float(np.mean(values[-min(after, max(3, len(values) // 5)):]))
    noise = 1.048 * float(np.median(np.abs(np.diff(values))))
    rise = end - values[best]
    if rise < 0.1 * abs(values[best]) or rise < 3 * noise:
        return None
    train_steps, train = _arrays(curves.train_loss)
    at_best = train[train_steps <= steps[best]]
    later = train[train_steps > steps[best]]
    if len(at_best) == 0 or len(later) == 0:
        return None
    train_then, train_end = _tail(at_best), _tail(later)
    if train_end >= train_then:
        return None
    return int(steps[best]), (
        f"{curves.name('val_loss')} rose from its minimum {values[best]:.4g} at step "
        f"{int(steps[best])} to {end:.4g} (+{end / values[best] - 1:.0%}, noise "
        f"{noise:.2g}) while {curves.name('train_loss')} fell from {train_then:.4g} to "
        f"{train_end:.4g}")


def _medians(layers: list[tuple[str, Series]]) -> list[tuple[str, float, Series]]:
    out = []
    for tag, points in layers:
        _, values = _arrays(points)
        if len(values):
            out.append((tag, float(np.median(values)), finite(points)))
    return out


def vanishing_gradients(curves: Curves) -> tuple[int | None, str] | None:
    """AUTOTRAINER's rule on medians over the run: the first layer's gradient norm is below
    1e-3 of the last layer's and below 1e-4 in absolute terms. Layers are in the order
    their tags were first written, which is parameter order for loops and for the probe.
    """
    layers = _medians(curves.grad_layers)
    if len(layers) < 2 or layers[-1][1] <= 0:
        return None
    (first, low, first_points), (last, high, last_points) = layers[0], layers[-1]
    ratio = low / high
    if ratio >= 1e-3 or low >= 1e-4:
        return None
    last_by_step = dict(last_points)
    since = next((s for s, v in first_points
                  if last_by_step.get(s, 0) > 0 and v / last_by_step[s] < 1e-3), None)
    return since, (f"{first} / {last} = {ratio:.1e} (medians {low:.1e} and {high:.1e}); "
                   "AUTOTRAINER's bounds are 1e-3 and 1e-4")


def _global_norms(curves: Curves) -> tuple[str, Series]:
    if curves.grad_global:
        return curves.name("grad_global"), curves.grad_global
    by_step: dict[int, float] = {}
    for _, points in curves.grad_layers:
        for step, value in points:
            by_step[step] = by_step.get(step, 0.0) + value * value
    return "global gradient norm", sorted((s, math.sqrt(v)) for s, v in by_step.items())


def exploding_gradients(curves: Curves) -> tuple[int | None, str] | None:
    """The global gradient norm becomes NaN/inf, or bursts. A burst is either a rise 100x
    above its first values (median of the first three measurements), two orders of
    magnitude being well beyond what a loss landscape's curvature changes do in a healthy
    run; or a rise 10x above the first measurement that the training loss answers by
    jumping over 1.25x its own first value within :data:`BURST_WINDOW` steps (a loss
    above where an untrained model starts is what a step thrown off the landscape gives:
    the signature of a gradient "cliff", Pascanu et al. 2013, even when the burst wrecks
    the weights before it can grow 100x). A running maximum logged beside the norm
    (``grad_norm/global_max``) counts too, so a one-step burst between two logged steps
    is not lost. Norms logged once the training loss is NaN/inf are left out: they
    follow from the loss, whatever broke it.
    """
    tag, points = _global_norms(curves)
    nan_loss = _first_non_finite(curves, "train_loss")
    if nan_loss is not None:  # a NaN loss makes NaN gradients: a consequence, not evidence
        points = [(s, v) for s, v in points if s < nan_loss[0]]
    if len(points) < 2:
        return None
    broken = next(((s, v) for s, v in points if not math.isfinite(v)), None)
    if broken:
        return broken[0], f"{tag} became {broken[1]} at step {broken[0]}"
    peaks = [(s, v) for s, v in finite(curves.grad_peak)
             if nan_loss is None or s < nan_loss[0]]
    if peaks:  # bursts between the logged steps count too
        tag = f"{tag} (peak {curves.name('grad_peak')})"
    norms = sorted(points + peaks)
    peak = max(v for _, v in norms)
    base = float(np.median([v for _, v in points[:3]]))
    high = next(((s, v) for s, v in norms if v > 100 * base), None) if base > 0 else None
    if high is not None:
        return high[0], f"{tag} rose from {base:.3g} to {peak:.3g} (over 100x its start)"
    burst = _burst_with_loss_spike(curves, norms, points[0][1])
    if burst is None:
        return None
    step, norm, loss = burst
    return step, (f"{tag} jumped from {points[0][1]:.3g} to {norm:.3g} (over 10x its start) "
                  f"and {curves.name('train_loss')} answered at {loss:.3g}, over 1.25x "
                  "where it started")


BURST_WINDOW = 25


def _burst_with_loss_spike(curves: Curves, norms: list[tuple[int, float]],
                           first: float) -> tuple[int, float, float] | None:
    """The first norm over 10x ``first`` with a training loss over 1.25x its first value
    between the previous logged norm and :data:`BURST_WINDOW` steps after it (a running
    maximum says only that the burst fell somewhere since the last logged step).
    """
    losses = finite(curves.train_loss)
    if first <= 0 or not losses or losses[0][1] <= 0:
        return None
    spike = 1.25 * losses[0][1]
    previous = norms[0][0]
    for step, norm in norms:
        if norm > 10 * first:
            after = [v for s, v in losses if previous <= s <= step + BURST_WINDOW]
            if after and max(after) > spike:
                return step, norm, max(after)
        previous = step
    return None


def large_updates(curves: Curves) -> tuple[int | None, str] | None:
    """A layer's update/weight ratio has a median above 0.1 (DeepDiagnosis' threshold;
    healthy training sits near 1e-3): each step rewrites the weights it should nudge.
    """
    layers = [item for item in _medians(curves.update_ratios) if item[1] > 0.1]
    if not layers:
        return None
    tag, ratio, points = max(layers, key=lambda item: item[1])
    since = next((s for s, v in points if v > 0.1), None)
    return since, f"{tag} has a median of {ratio:.2g}, above 0.1 (healthy is about 1e-3)"



EARLY_STEPS = 10
STALLED_AFTER = 2 / 3


def large_early_updates(curves: Curves) -> tuple[int | None, str] | None:
    """Over the first ten optimizer steps the median layer moves more than 10% of its
    weights per step (each layer's median ratio over those steps), and the loss has not
    come down after them: over the next tenth of the run (10-20% of its steps) it is still
    above two thirds of where it started. Adam's first updates are about lr * sign(g) for
    every weight, whatever the gradient's size, so this is where a missing warmup shows,
    and it shows the same way on every seed. Large first steps alone are no fault (plain
    SGD at a high rate takes them, and a pre-norm transformer or a residual net rides them
    out, with the loss at a fifth to a half of its start by then); a model they threw out
    of range stalls, and how it then fails (dead units, vanishing or bursting gradients)
    differs from seed to seed.
    """
    early = []
    for tag, points in curves.update_ratios:
        values = [v for s, v in finite(points) if s <= EARLY_STEPS]
        if len(values) >= 3:
            early.append((float(np.median(values)), tag))
    _, losses = _arrays(curves.train_loss)
    if len(early) < 2 or len(losses) < 20:
        return None
    early.sort()
    typical = early[len(early) // 2][0]
    start = _head(losses)
    after = float(np.median(losses[len(losses) // 10:len(losses) // 5]))
    if typical <= 0.1 or start <= 0 or after <= STALLED_AFTER * start:
        return None
    over = sum(ratio > 0.1 for ratio, _ in early)
    return 1, (f"in the first {EARLY_STEPS} steps {over} of {len(early)} layers moved more "
               f"than 10% of their weights per step (median layer {typical:.2g}; healthy is "
               f"about 1e-3), and {curves.name('train_loss')} is still at {after / start:.0%} "
               "of its start over the next tenth of the run")


DEAD_FRACTION = 0.5


def dead_units(curves: Curves) -> tuple[int | None, str] | None:
    """Over the last third of the run, half or more of a layer's ReLU units output zero for
    every input of a batch (median). DeepDiagnosis and AUTOTRAINER flag 70% of zero
    *outputs*; a unit silent on a whole batch is far rarer in a healthy layer (under 5% in
    the sandbox's healthy runs), so half of them is a clear sign.
    """
    worst = None
    for tag, points in curves.dead_units:
        steps, values = _arrays(points)
        if len(values) < 3:
            continue
        recent = float(np.median(values[-max(1, len(values) // 3):]))
        if recent >= DEAD_FRACTION and (worst is None or recent > worst[1]):
            since = int(steps[np.argmax(values >= DEAD_FRACTION)])
            worst = (tag, recent, since)
    if worst is None:
        return None
    tag, fraction, since = worst
    return since, f"{tag}: {fraction:.0%} of the layer's units are silent on whole batches"


def eval_batch_dependence(curves: Curves) -> tuple[int | None, str] | None:
    """More than 1% of probe inputs answer differently with other batch companions (the
    harness counts changed predicted classes; the probe, outputs that moved by over 1% of
    their spread); a model that is a fixed function of each input changes none.
    """
    points = finite(curves.batch_dependence)
    if not points or points[-1][1] <= 0.01:
        return None
    step, value = points[-1]
    return step, (f"{value:.0%} of probe inputs answered differently with other inputs "
                  f"in their batch ({curves.name('batch_dependence')})")


def _improved(curves: Curves, metric: np.ndarray) -> bool:
    """The validation metric got better by 0.05 (a share), or by 5% of its first value
    (an error such as an MAE, in the task's own units).
    """
    if curves.metric_lower_is_better:
        return metric[0] > 0 and (metric[0] - metric.min()) / metric[0] >= 0.05
    return metric.max() - metric[0] >= 0.05


def optimistic_validation(curves: Curves) -> tuple[int | None, str] | None:
    """The final validation metric is 0.1 or more above the test metric (UMLAUT flags a
    validation-train gap of 0.05; against a held-out test, 0.1 is beyond seed noise). For
    an error metric, in the task's units: validation 20% or more below the test error (an
    honest forecaster, validated on an earlier period than the one it is tested on and
    with its best epoch kept, sits up to about 10% below its test error).
    """
    val, test = finite(curves.val_metric), finite(curves.test_metric)
    if not val or not test:
        return None
    if curves.metric_lower_is_better:
        if test[-1][1] <= 0 or (test[-1][1] - val[-1][1]) / test[-1][1] < 0.2:
            return None
    elif val[-1][1] - test[-1][1] < 0.1:
        return None
    return test[-1][0], (f"{curves.name('val_metric')} {val[-1][1]:.3f} vs "
                         f"{curves.name('test_metric')} {test[-1][1]:.3f}")


NONDETERMINISTIC = 0.01


def nondeterministic_eval(curves: Curves) -> tuple[int | None, str] | None:
    """More than 1% of probe inputs get a different answer when the very same batch is
    served twice (``serve/repeat_change``). A trained model is a fixed function: the same
    batch gives the same answer, whatever mode BatchNorm is in. Only randomness left on at
    inference (dropout in training mode or called without ``training=``, random
    augmentation in the serving transform, sampling) changes it.
    """
    points = finite(curves.repeat_change)
    if not points or points[-1][1] <= NONDETERMINISTIC:
        return None
    step, value = points[-1]
    return step, (f"{value:.0%} of probe inputs got a different answer when the same batch "
                  f"was served twice ({curves.name('repeat_change')})")


VAL_ABOVE_TRAIN = 0.2


VAL_TRAIN_FLOOR = 0.02


def validation_above_training(curves: Curves) -> tuple[int | None, str] | None:
    """At the evaluations of the last third of the run, the validation loss sits below a
    fifth of the training loss just before each of them (the median of the training losses
    over the second half of the stretch since the evaluation before), and the training
    loss is still at least 2% of where it started (near zero, a ratio of two tiny losses
    says nothing). A model does about as well on data
    it trains on as on data it has not seen, or worse on the unseen; dropout makes training
    look about 1.5x worse, and heavy augmentation up to about 3.5x (the catalog's
    meter-reader-v1 fix: validation at 29-34% of its training loss). A validation loss at
    a fifth of the training loss or less says the validation rows are easier than the
    training rows: the same rows or near-copies of rows the model has memorised, a leaked
    feature, labels cleaned on one side only, or a loss computed differently on each side.
    Each evaluation is set against the training loss of the model it evaluated: a run
    that learns late drops within an epoch, and a median over the last third of its
    training loss would still hold the plateau the evaluation no longer sees.
    """
    val_steps, val = _arrays(curves.val_loss)
    steps, train = _arrays(curves.train_loss)
    if len(val) < 3 or len(train) < 20:
        return None
    since = steps[0] + 2 * (steps[-1] - steps[0]) / 3
    start = _head(train)
    ratios, last_train, previous = [], None, float(steps[0])
    for at, v in zip(val_steps, val, strict=True):
        window = train[(steps > (previous + at) / 2) & (steps <= at)]
        previous = float(at)
        if at < since or len(window) == 0:
            continue
        last_train = float(np.median(window))
        if v < 0 or last_train <= 0:
            return None
        ratios.append(v / last_train)
    if not ratios or last_train is None or start <= 0 or last_train < VAL_TRAIN_FLOOR * start:
        return None
    ratio = float(np.median(ratios))
    if ratio >= VAL_ABOVE_TRAIN:
        return None
    return int(since), (f"over the last third of the run {curves.name('val_loss')} is "
                        f"{ratio:.0%} of {curves.name('train_loss')} just before each "
                        f"evaluation (at the last: {val[-1]:.4g} against {last_train:.4g})")


FLAT_METRIC = 1e-3


def flat_validation_metric(curves: Curves) -> tuple[int | None, str] | None:
    """The validation metric is the same (within 0.001, or 0.1% of an error's level) at
    four evaluations or more while the training loss falls to half its start or less. A
    model that is learning moves its validation predictions, and some of them change
    class; a metric that never moves says the predictions do not: every input gets the
    majority class (imbalanced classes under a plain or a wrongly weighted loss), or the
    metric is computed on something other than the model being trained. A perfect metric
    (1, or an error of 0) has nowhere to move and is not flat in this sense.
    """
    val_steps, metric = _arrays(curves.val_metric)
    _, train = _arrays(curves.train_loss)
    if len(metric) < 4 or len(train) < 20:
        return None
    start, end = _head(train), _tail(train)
    spread = float(metric.max() - metric.min())
    scale = abs(float(np.median(metric))) if curves.metric_lower_is_better else 1.0
    if start <= 0 or end > 0.5 * start or spread > FLAT_METRIC * scale:
        return None
    perfect = 0.0 if curves.metric_lower_is_better else 1.0
    if abs(float(metric[0]) - perfect) <= FLAT_METRIC:  # nothing left to move
        return None
    return int(val_steps[0]), (f"{curves.name('val_metric')} stayed at {metric[0]:.4g} "
                               f"(spread {spread:.2g}) over {len(metric)} evaluations while "
                               f"{curves.name('train_loss')} fell from {start:.4g} to "
                               f"{end:.4g}")


def _rank(values: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(values, kind="stable"), kind="stable").astype(np.float64)


def rising_loss(curves: Curves) -> tuple[int | None, str] | None:
    """The training loss ends (median of its last 10%) more than 10% of its start above
    where it started (median of the first 5%), every value finite, and the rise is steady:
    the running median's rank correlation with the step is 0.5 or more. A minimised loss
    that goes *up* for most of a run is the Tuning Playbook's "almost always a bug": a sign
    error in the loss or in the update, or an objective meant to be maximised.
    """
    if any(not math.isfinite(v) for _, v in curves.train_loss):
        return None
    steps, values = _arrays(curves.train_loss)
    if len(values) < 20:
        return None
    start, end = _head(values), _tail(values)
    if end - start <= 0.1 * max(abs(start), 1e-8):
        return None
    smooth = rolling_median(values, max(3, len(values) // 20) | 1)
    rho = float(np.corrcoef(_rank(steps.astype(np.float64)), _rank(smooth))[0, 1])
    if not rho >= 0.5:
        return None
    since = int(steps[int(np.argmin(smooth))])
    return since, (f"{curves.name('train_loss')} rose from {start:.4g} to {end:.4g} and kept "
                   f"rising (rank correlation with the step {rho:.2f})")


def sudden_nan(curves: Curves) -> tuple[int | None, str] | None:
    """The training loss turns NaN/inf after it had fallen to half its start or less, and
    the last finite values (5% of them, at least three) sit within twice the best running
    median: training was going well and nothing blew up first. That is a number that
    overflowed or a log of zero in the loss (AUTOTRAINER's and DeepDiagnosis' NaN-loss
    checks name the event; the healthy run before it names the cause), not a learning
    rate that diverged.
    """
    broken = _first_non_finite(curves, "train_loss")
    if broken is None:
        return None
    nan_step = broken[0]
    value = next(v for s, v in curves.train_loss if s == nan_step and not math.isfinite(v))
    before = [(s, v) for s, v in curves.train_loss if s < nan_step]
    _, values = _arrays(before)
    if len(values) < 10:
        return None
    start = _head(values)
    smooth = rolling_median(values, max(3, len(values) // 20) | 1)
    best = float(smooth.min())
    recent = float(np.median(values[-max(3, len(values) // 20):]))
    if start <= 0 or best > 0.5 * start or recent > 2 * best:
        return None
    return nan_step, (f"{curves.name('train_loss')} fell from {start:.4g} to {best:.4g}, was "
                      f"{recent:.4g} just before, then became {value} at step "
                      f"{nan_step}")


SMALL_UPDATE = 1e-5


def small_updates(curves: Curves) -> tuple[int | None, str] | None:
    """The median update/weight ratio across layers, after the first 10% of each layer's
    measurements, is below 1e-5 (DeepDiagnosis' threshold; healthy training sits near
    1e-3): every step nudges the weights by a hundred-thousandth, so the run would need
    thousands of times more steps. Layers that never change at all are frozen-weights'
    business and are left out.
    """
    medians = []
    for _, points in curves.update_ratios:
        _, values = _arrays(points)
        values = values[len(values) // 10:]
        if len(values) and values.max() > 0:
            medians.append(float(np.median(values)))
    if not medians:
        return None
    overall = float(np.median(medians))
    if overall >= SMALL_UPDATE:
        return None
    return None, (f"the median update/weight ratio over {len(medians)} layers is "
                  f"{overall:.1e}, below 1e-5 (healthy is about 1e-3)")


def frozen_weights(curves: Curves) -> tuple[int | None, str] | None:
    """Half or more of the layers with an update ratio logged have a ratio of exactly zero at
    every logged step (DeepDiagnosis' unchanged-weight check; TrainCheck's "step did not
    update any parameter"): the optimizer steps, but not these weights. They are frozen,
    missing from the optimizer, or belong to a model object that is no longer trained.
    """
    layers = [(tag, [v for _, v in finite(points)]) for tag, points in curves.update_ratios]
    layers = [(tag, values) for tag, values in layers if len(values) >= 2]
    frozen = [tag for tag, values in layers if max(values) == 0.0]
    if not frozen or 2 * len(frozen) < len(layers):
        return None
    shown = ", ".join(frozen[:4]) + (", ..." if len(frozen) > 4 else "")
    return None, (f"{len(frozen)} of {len(layers)} layers never changed: update ratio 0 at "
                  f"every logged step ({shown})")


LR_COLLAPSE = 0.01


def lr_collapse(curves: Curves) -> tuple[int | None, str] | None:
    """The learning rate falls to 1% of its peak or less before half of the run's steps and
    never comes back above 10% of it. A schedule that ends near zero (cosine, linear decay)
    gets there at the end; one whose milestones, counted in epochs, are stepped every batch
    gets there in the first epochs (Karpathy: "do not trust learning rate decay defaults").
    """
    points = finite(curves.lr)
    if len(points) < 5:
        return None
    peak_at = max(range(len(points)), key=lambda i: points[i][1])
    peak = points[peak_at][1]
    if peak <= 0:
        return None
    end = max([points[-1][0]] + [s for s, _ in curves.train_loss])
    low = next(((s, v) for s, v in points[peak_at:] if v <= 1.001 * LR_COLLAPSE * peak), None)
    if low is None or low[0] >= end / 2:
        return None
    if any(v > 0.1 * peak for s, v in points if s > low[0]):
        return None
    return low[0], (f"{curves.name('lr')} fell from {peak:.3g} to {low[1]:.3g} by step "
                    f"{low[0]} of {end}, and stayed there")


RULES: dict[str, Rule] = {
    "diverging": diverging, "not-learning": not_learning, "collapsed": collapsed,
    "oscillating": oscillating,
    "overfitting": overfitting, "vanishing-gradients": vanishing_gradients,
    "exploding-gradients": exploding_gradients, "large-updates": large_updates,
    "large-early-updates": large_early_updates,
    "dead-units": dead_units, "eval-batch-dependence": eval_batch_dependence,
    "optimistic-validation": optimistic_validation, "rising-loss": rising_loss,
    "sudden-nan": sudden_nan, "small-updates": small_updates,
    "frozen-weights": frozen_weights, "lr-collapse": lr_collapse,
    "nondeterministic-eval": nondeterministic_eval,
    "validation-above-training": validation_above_training,
    "flat-validation-metric": flat_validation_metric,
}

# A diverging run swings and stalls on its way to NaN: naming those too adds nothing.
# Swings explain a lack of progress, and an oscillating training loss cannot say whether
# training "keeps falling" (overfitting). A NaN out of a healthy run is not divergence,
# and a rising loss is not a lack of learning. Dead units give their layers no gradient:
# those weights stand still because of them. Answers that change when the same batch is
# served again change with other batch companions too: that is not batch dependence.
# Updates too large all run long are too large in the first steps as well. A loss that
# fell and came back collapsed; if it blew up past its start or went NaN, that says more.
# Dead units pass no gradient back (the gradient vanishes because of them), and weights
# barely move when their gradient vanishes: raising the learning rate fixes neither.
MASKED_BY = {"not-learning": ("diverging", "oscillating", "rising-loss"),
             "oscillating": ("diverging",), "overfitting": ("oscillating",),
             "diverging": ("sudden-nan",), "frozen-weights": ("dead-units",),
             "eval-batch-dependence": ("nondeterministic-eval",),
             "large-early-updates": ("large-updates",),
             "collapsed": ("diverging", "sudden-nan", "oscillating"),
             "vanishing-gradients": ("dead-units", "exploding-gradients"),
             "small-updates": ("vanishing-gradients", "dead-units")}
