"""The paired design every overhead benchmark here uses.

Each measured run is compared with the mean of the baseline runs just before and after
it, so drift in the machine's speed cancels; the median of those ratios and its
interquartile range are reported, with the baseline's median.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable


def overhead(baseline: Callable[[], float], measured: Callable[[], float],
             pairs: int) -> tuple[float, str, str]:
    """(baseline median, "+x.x%" median overhead, "a% to b%" interquartile range)."""
    bare, ratios = [], []
    for _ in range(pairs):
        before, value, after = baseline(), measured(), baseline()
        bare += [before, after]
        ratios.append(value / ((before + after) / 2))
    q1, median, q3 = statistics.quantiles(ratios, n=4)
    return (statistics.median(bare), f"{100 * (median - 1):+.1f}%",
            f"{100 * (q1 - 1):+.1f}% to {100 * (q3 - 1):+.1f}%")
