"""One run, one story: which finding is the cause, and which follow from it.

A run that blew up and then sat at chance shows exploding gradients *and* a loss that does
not move. Read as two findings, their advice contradicts itself: "lower the learning rate"
and "raise the learning rate". The primary finding is the one that explains the others:
evidence of a mechanism (a gradient, an update, a unit, a schedule) before what the curves
alone show, and what went wrong first before what followed. The rest are told as
consistent with it, and a fix of theirs that moves the learning rate against the primary's
is left out: the primary's reading of the run is the one the evidence supports.
"""

from __future__ import annotations

# Causes with evidence of their mechanism first; the shapes of the curves after.
PRIMARY_ORDER = (
    "sudden-nan", "diverging", "exploding-gradients", "dead-units", "vanishing-gradients",
    "frozen-weights", "lr-collapse", "large-updates", "large-early-updates", "small-updates",
    "nondeterministic-eval", "eval-batch-dependence", "collapsed", "rising-loss",
    "oscillating", "validation-above-training", "optimistic-validation",
    "flat-validation-metric", "overfitting", "not-learning",
)

# Which way a symptom's advice moves the learning rate.
LOWER, RAISE = "lower", "raise"
LR_DIRECTION = {
    "diverging": LOWER, "exploding-gradients": LOWER, "dead-units": LOWER,
    "large-updates": LOWER, "large-early-updates": LOWER, "collapsed": LOWER,
    "oscillating": LOWER, "rising-loss": LOWER,
    "small-updates": RAISE, "not-learning": RAISE,
}


def rank(symptom: str) -> int:
    return PRIMARY_ORDER.index(symptom) if symptom in PRIMARY_ORDER else len(PRIMARY_ORDER)


def against(primary: str, symptom: str) -> bool:
    """True when ``symptom``'s learning-rate advice points the other way from the
    primary's.
    """
    mine, theirs = LR_DIRECTION.get(symptom), LR_DIRECTION.get(primary)
    return bool(mine and theirs and mine != theirs)


def moves_learning_rate(fix: str) -> bool:
    return "learning rate" in fix.lower() or "learning-rate" in fix.lower()
