"""A loss curve drawn in plain text, for the terminal (the PNG has the full picture).

ASCII only, so it survives any terminal, log file or CI output. Steps are bucketed into
columns (the median of each bucket is drawn); a log scale for losses keeps a diverging
run from flattening everything else; non-finite values are marked on the top row.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

MARK, NONFINITE = "*", "x"


def line_chart(points: Sequence[tuple[int, float]], *, title: str, width: int = 60,
               height: int = 10, log: bool = True) -> str:
    """``points`` are (step, value); returns the chart as lines of text."""
    if not points:
        return f"{title}: nothing was logged"
    width = min(width, max(len(points), 12))  # a short run gets a narrow chart, no gaps
    first, last = points[0][0], points[-1][0]
    span = max(last - first, 1)
    columns: list[list[float]] = [[] for _ in range(width)]
    for step, value in points:
        columns[min(int((step - first) / span * (width - 1)), width - 1)].append(value)
    finite = [v for _, v in points if math.isfinite(v) and (v > 0 or not log)]
    if not finite:
        return f"{title}: no finite value to draw (first non-finite at step {first})"
    scale = _Scale(min(finite), max(finite), height, log)
    grid = [[" "] * width for _ in range(height)]
    for x, values in enumerate(columns):
        good = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
        if len(good) < len(values):
            grid[0][x] = NONFINITE
        elif good:
            grid[scale.row(statistics.median(good))][x] = MARK
    labels = {0: scale.label(0), height // 2: scale.label(height // 2),
              height - 1: scale.label(height - 1)}
    lines = [f"{title}{' (log scale)' if log else ''}"]
    for r, row in enumerate(grid):
        lines.append(f"{labels.get(r, ''):>9} |{''.join(row)}")
    lines.append(" " * 10 + "+" + "-" * width)
    lines.append(" " * 11 + f"{first:<{width // 2}}{f'step {last}':>{width - width // 2}}")
    bad = [s for s, v in points if not math.isfinite(v)]
    if bad:
        lines.append(f"{'':10} {NONFINITE} = non-finite (first at step {bad[0]})")
    return "\n".join(lines)


class _Scale:
    """Maps values to rows (row 0 at the top), linear or logarithmic."""

    def __init__(self, low: float, high: float, height: int, log: bool):
        self.log, self.height = log, height
        self.low, self.high = (math.log10(low), math.log10(high)) if log else (low, high)
        if self.high - self.low < 1e-12:
            self.low, self.high = self.low - 0.5, self.high + 0.5

    def row(self, value: float) -> int:
        v = math.log10(value) if self.log else value
        fraction = (v - self.low) / (self.high - self.low)
        return min(self.height - 1, max(0, round((1 - fraction) * (self.height - 1))))

    def label(self, row: int) -> str:
        v = self.high - row / (self.height - 1) * (self.high - self.low)
        return f"{10 ** v if self.log else v:.3g}"
