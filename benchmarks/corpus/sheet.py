"""Contact sheets of the corpus runs, to label them by eye before the diagnoser sees them.

Read with tensorboard's own EventAccumulator, not the sandbox's reader, and drawn with no
finding on them: the labels come from the curves alone.

    python benchmarks/corpus/sheet.py benchmarks/corpus/runs OUT_DIR    # OUT_DIR/sheet-N.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

PER_SHEET = 6


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    found: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(folder.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events.parent), size_guidance={"scalars": 0})
        acc.Reload()
        prefix = "" if events.parent == folder else events.parent.name + "/"
        for tag in acc.Tags()["scalars"]:
            found[prefix + tag] = [(e.step, e.value) for e in acc.Scalars(tag)]
    return found


def kind(tag: str) -> str:
    low = tag.lower()
    if "repeat" in low or "batch_dependence" in low or "output_shift" in low:
        return "serve"
    if "grad" in low:
        return "grad"
    if "update" in low or "dead" in low:
        return "update"
    if "lr" in low.replace("/", " ").split() or "learning_rate" in low or low.startswith("lr"):
        return "lr"
    if "loss" in low:
        return "loss"
    if "acc" in low or "mae" in low:
        return "metric"
    return "other"


def draw(runs: list[Path], root: Path, out: Path) -> None:
    fig, axes = plt.subplots(len(runs), 4, figsize=(20, 3.2 * len(runs)), squeeze=False)
    for row, folder in zip(axes, runs, strict=False):
        found = scalars(folder)
        panels = {"loss": row[0], "metric": row[1], "lr": row[1].twinx(), "grad": row[2],
                  "update": row[3]}
        notes = []
        for tag, points in found.items():
            k = kind(tag)
            if k == "serve" or (k in ("other", "metric") and len(points) == 1):
                notes.append(f"{tag} = {points[-1][1]:.3g}")
                continue
            if k == "other":
                continue
            steps, values = zip(*points, strict=True)
            ax = panels[k]
            style = {"lw": 0.6} if len(points) > 60 else {"marker": ".", "lw": 0.8}
            ax.plot(steps, values, label=tag[-28:], **style)
        row[0].set_title(folder.relative_to(root).as_posix(), loc="left", fontsize=10)
        values = [v for line in row[0].lines for v in line.get_ydata()]
        finite = [v for v in values if v == v and abs(v) != float("inf")]
        if finite and min(finite) > 0 and max(finite) > 10 * min(finite):
            row[0].set_yscale("log")
        for ax, name in ((row[2], "gradient norms"), (row[3], "update ratio / dead")):
            ax.set_title(name, fontsize=8)
            if ax.lines:
                ax.set_yscale("log")
        row[1].set_title("metrics, lr (dashed axis right)", fontsize=8)
        for line in panels["lr"].lines:
            line.set_linestyle("--")
        for ax in (row[0], row[1], panels["lr"], row[2], row[3]):
            if ax.lines and len(ax.lines) <= 8:
                ax.legend(fontsize=6, loc="best")
        if notes:
            row[1].text(0.02, 0.02, "\n".join(notes), transform=row[1].transAxes, fontsize=7,
                        va="bottom")
    fig.tight_layout()
    fig.savefig(out, dpi=70)
    plt.close(fig)


def main(root: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    runs = sorted({p.parent if p.parent.name not in ("loss_train", "loss_val") else
                   p.parent.parent for p in root.rglob("events.out.tfevents.*")})
    for i in range(0, len(runs), PER_SHEET):
        draw(runs[i:i + PER_SHEET], root, out / f"sheet-{i // PER_SHEET + 1}.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
