"""Which logged tag is the training loss? Roles from the names people actually use.

Sandbox runs log ``loss/train``; other code logs ``Loss/train``, ``train_loss``,
``training/loss``, ``validation/loss``, ``val_loss_epoch``, Keras' ``epoch_loss`` under
``train/`` and ``validation/`` folders, Hugging Face's ``train/loss`` and ``eval/loss``;
Lightning's ``grad_norm`` utility writes ``grad_2.0_norm/<param>`` and
``grad_2.0_norm_total``.
A tag is cut into lower-case words (``trainLoss`` -> train, loss); the quantity word
(loss, accuracy) and the split word (train, val, test) decide its role. A loss with no
split word is the training loss. Among several candidates the one with fewest other
words wins (``loss/train`` over ``loss/train_kl``), then the one with most points.
A tag on a log scale (``loss/train_log10``, the companion the sandbox writes beside each
loss so that a diverged run can be seen next to a healthy one) is never a curve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .logs import Series

TRAIN = {"train", "training", "trn"}
VAL = {"val", "valid", "validation", "eval", "evaluation", "dev"}
TEST = {"test", "holdout"}
LOSS = {"loss", "nll"}
METRIC = {"acc", "accuracy", "metric", "top1"}
# Words that make a metric an error, where lower is better (a regression's MAE, say).
LOWER_IS_BETTER = {"mae", "mse", "rmse", "mape", "smape"}
NEUTRAL = {"epoch", "step", "batch", "avg", "mean", "total", "running", "value", "main"}
NOT_A_CURVE = {"hp", "lr", "grad", "norm", "scale", "error", "err", "time", "gap", "log10"}

GRADIENT_FAMILIES = {"grad_norm", "grad_norms", "gradient_norm", "gradient_norms", "grad",
                     "grads", "gradients", "gradnorm"}
UPDATE_FAMILIES = {"update_ratio", "update_ratios", "update_to_weight", "update_weight_ratio"}
DEAD_FAMILIES = {"dead_units", "dead_fraction", "dead_relu", "dead_neurons"}
GLOBAL_NAMES = {"", "global", "total", "all"}
LIGHTNING_GRAD_NORM = re.compile(r"grad_(?:[0-9.]+|inf)_norm(_total)?$")
PEAK_NAMES = {"global_max", "max", "peak"}  # the largest global norm since the last point


def words(tag: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", tag)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


@dataclass
class Curves:
    """A run's scalars by role; ``names`` keeps the tag each role came from."""

    train_loss: Series = field(default_factory=list)
    val_loss: Series = field(default_factory=list)
    train_metric: Series = field(default_factory=list)
    val_metric: Series = field(default_factory=list)
    test_loss: Series = field(default_factory=list)
    test_metric: Series = field(default_factory=list)
    lr: Series = field(default_factory=list)
    grad_global: Series = field(default_factory=list)
    grad_peak: Series = field(default_factory=list)  # running max of the global norm
    batch_dependence: Series = field(default_factory=list)
    repeat_change: Series = field(default_factory=list)  # same batch served twice
    grad_layers: list[tuple[str, Series]] = field(default_factory=list)
    update_ratios: list[tuple[str, Series]] = field(default_factory=list)
    dead_units: list[tuple[str, Series]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)

    def name(self, role: str) -> str:
        return self.names.get(role, role)

    @property
    def metric_lower_is_better(self) -> bool:
        """An error metric (MAE, RMSE...): named so by the validation or the test tag; the
        harness logs its test score as ``test/metric_<name>`` for such metrics.
        """
        return any(set(words(self.names.get(role, ""))) & LOWER_IS_BETTER
                   for role in ("val_metric", "test_metric", "train_metric"))


def curves(scalars: dict[str, Series]) -> Curves:
    found = Curves()
    candidates: dict[str, list[tuple[int, int, str]]] = {}
    for tag, points in scalars.items():
        if not points or _telemetry(tag, points, found):
            continue
        role = _curve_role(tag)
        if role is not None:
            extra = len(set(words(tag)) - LOSS - METRIC - LOWER_IS_BETTER - TRAIN - VAL - TEST
                        - NEUTRAL)
            candidates.setdefault(role, []).append((extra, -len(points), tag))
    for role, options in candidates.items():
        tag = min(options)[2]
        setattr(found, role, scalars[tag])
        found.names[role] = tag
    return found


def _telemetry(tag: str, points: Series, found: Curves) -> bool:
    """Gradient norms, update ratios, dead units, LR, batch dependence: True if it was one."""
    family, _, rest = tag.partition("/")
    family = family.lower().replace("-", "_")
    tokens = set(words(tag))
    lightning = LIGHTNING_GRAD_NORM.match(family)
    if lightning:  # lightning.pytorch.utilities.grad_norm: grad_2.0_norm/<param>, ..._total
        family, rest = "grad_norm", "total" if lightning.group(1) else rest
    if family in GRADIENT_FAMILIES:
        if rest.lower() in PEAK_NAMES:
            found.grad_peak, found.names["grad_peak"] = points, tag
        elif rest.lower() in GLOBAL_NAMES:
            found.grad_global, found.names["grad_global"] = points, tag
        else:
            found.grad_layers.append((tag, points))
        return True
    if "grad" in tokens and "norm" in tokens and tokens <= {"grad", "norm", *TRAIN, "global"}:
        found.grad_global, found.names["grad_global"] = points, tag  # train/grad_norm (HF)
        return True
    if family in UPDATE_FAMILIES:
        found.update_ratios.append((tag, points))
        return True
    if family in DEAD_FAMILIES:
        found.dead_units.append((tag, points))
        return True
    if tag.lower().endswith("repeat_change"):
        found.repeat_change, found.names["repeat_change"] = points, tag
        return True
    if tag.lower().endswith("batch_dependence"):
        found.batch_dependence, found.names["batch_dependence"] = points, tag
        return True
    if "lr" in tokens or {"learning", "rate"} <= tokens:
        if not found.lr:
            found.lr, found.names["lr"] = points, tag
        return True
    return False


def _curve_role(tag: str) -> str | None:
    tokens = set(words(tag))
    if tokens & NOT_A_CURVE:
        return None
    quantity = "loss" if tokens & LOSS else \
        "metric" if tokens & (METRIC | LOWER_IS_BETTER) else None
    splits = [name for name, group in (("train", TRAIN), ("val", VAL), ("test", TEST))
              if tokens & group]
    if quantity is None or len(splits) > 1:
        return None
    return f"{splits[0] if splits else 'train'}_{quantity}"
