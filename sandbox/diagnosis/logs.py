"""Finding the runs below a folder and reading their scalars (see ``records``).

A run is a folder holding ``events.out.tfevents.*`` files, with two merges that match how
people actually write logs: Keras puts ``train/`` and ``validation/`` folders under one
run, and ``SummaryWriter.add_scalars("loss", {"train": ..., "val": ...})`` writes
``loss_train/`` and ``loss_val/`` folders next to the run's own file. Such a split folder
joins its parent run, its folder name prefixed to its tags (``validation/epoch_loss``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SandboxError
from ..files import is_regular

EVENT_FILE = "events.out.tfevents.*"
SPLIT_FOLDERS = {"train", "training", "val", "valid", "validation", "eval", "evaluation",
                 "dev", "test"}

Series = list[tuple[int, float]]


class NoEventFiles(SandboxError):
    """The path holds nothing the diagnoser can read (exit code 2)."""


@dataclass
class RunLog:
    """One run's scalars, tags in the order they first appear (layer order, for gradient
    tags written in a loop over ``named_parameters``), points sorted by step.
    """

    name: str
    path: Path
    scalars: dict[str, Series] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def find_runs(root: Path) -> list[RunLog]:
    """Every run at or below ``root`` (a folder, or one event file), read."""
    return [run.read() for run in run_files(root)]


@dataclass
class RunFiles:
    """A run's event files (each with the prefix its tags get), found but not yet read."""

    name: str
    path: Path
    files: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    def read(self) -> RunLog:
        log = RunLog(self.name, self.path)
        for file, prefix in self.files:
            _read_file(file, prefix, log)
        for file in self.skipped:  # not read: it could be a link anywhere, or a FIFO
            log.problems.append(f"{file.name}: skipped, not a regular file")
        for points in log.scalars.values():
            points.sort(key=lambda point: point[0])
        return log


def run_files(root: Path) -> list[RunFiles]:
    """The runs at or below ``root`` and their event files, in order, without reading them
    (:func:`sandbox.diagnosis.diagnose` reads one at a time: a folder of big runs is never
    held in memory at once).
    """
    root = Path(root)
    if not root.exists():
        raise NoEventFiles(f"{root} does not exist.")
    found = [root] if root.is_file() else sorted(root.rglob(EVENT_FILE))
    files = [f for f in found if f == root or is_regular(f)]  # a path named: followed
    skipped = [f for f in found if f not in files]
    if not files and skipped:
        raise NoEventFiles(f"no readable event file under {root}: "
                           f"{', '.join(f.name for f in skipped[:3])} "
                           "is not a regular file (a link, a FIFO, a folder?).")
    if not files:
        raise NoEventFiles(f"no TensorBoard event files (events.out.tfevents.*) under {root}. "
                           "Point diagnose at the folder you give `tensorboard --logdir`.")
    base = root.parent if root.is_file() else root
    runs: dict[Path, RunFiles] = {}
    for file in files:
        run_dir, prefix = _run_of(file.parent, base)
        name = run_dir.relative_to(base).as_posix() if run_dir != base else "."
        runs.setdefault(run_dir, RunFiles(name, run_dir)).files.append((file, prefix))
    for file in skipped:  # a run of only such files still gets its note
        run_dir, _ = _run_of(file.parent, base)
        name = run_dir.relative_to(base).as_posix() if run_dir != base else "."
        runs.setdefault(run_dir, RunFiles(name, run_dir)).skipped.append(file)
    return list(runs.values())


def read_files(files: list[Path], name: str, path: Path) -> RunLog:
    """One run from exactly these event files (the harness reads only its own)."""
    log = RunLog(name, path)
    for file in files:
        _read_file(file, "", log)
    for points in log.scalars.values():
        points.sort(key=lambda point: point[0])
    return log


def _run_of(folder: Path, base: Path) -> tuple[Path, str]:
    """The run a folder of event files belongs to, and the prefix its tags get."""
    if folder == base:
        return folder, ""
    name = folder.name.lower()
    parent_has_own = any(folder.parent.glob(EVENT_FILE))
    is_split = name in SPLIT_FOLDERS or (
        parent_has_own and re.split(r"[_\-]", name)[-1] in SPLIT_FOLDERS)
    return (folder.parent, folder.name + "/") if is_split else (folder, "")


def _read_file(file: Path, prefix: str, log: RunLog) -> None:
    from .records import Damage, events

    damage: list[Damage] = []
    count = 0
    scalar_tags: set[str] = set()  # TF2 writes a tensor's plugin metadata once per tag
    scalars = log.scalars
    thinning: dict[str, _Thinning] = {}
    try:
        for event in events(file, damage):
            count += 1
            step = event.step
            for value in event.summary.value:
                number = _scalar(value, scalar_tags)
                if number is not None:
                    points = scalars.get(prefix + value.tag)
                    if points is None:
                        points = scalars[prefix + value.tag] = []
                    if prefix + value.tag in thinning:
                        thinning[prefix + value.tag].add(points, (step, number))
                    else:
                        points.append((step, number))
                        if len(points) >= MAX_POINTS:
                            thinning[prefix + value.tag] = _Thinning(points)
                            log.problems.append(f"{prefix + value.tag}: over {MAX_POINTS:,} "
                                                "points, thinned keeping the larger of "
                                                "each pair, then of each 4, 8, ...")
    except OSError as exc:
        log.problems.append(f"{file.name}: could not be read ({exc.strerror or exc})")
        return
    finally:
        for tag, thinned in thinning.items():
            thinned.flush(scalars[tag])
    if damage and count == 0:
        log.problems.append(f"{file.name}: no readable record (not an event file, or "
                            f"corrupt: {damage[0].reason})")
    elif damage:
        log.problems.append(f"{file.name}: {damage[0]}")


MAX_POINTS = 200_000  # per tag: about 20 MB of a run's memory, however long the log


class _Thinning:
    """A curve past :data:`MAX_POINTS`: halved, the larger point of each pair kept (a NaN or
    inf first), and from then on one point kept of each group of ``stride`` arriving
    points, the stride doubling at each halving, so the whole curve keeps one resolution.
    Spikes and NaNs survive, which every-other-point thinning would lose half of; the
    rules read medians over a twentieth of the run, which barely move.
    """

    def __init__(self, points: Series):
        self.stride, self.held, self.pending = 1, 0, None
        self._halve(points)

    def _halve(self, points: Series) -> None:
        kept = [a if _louder(a[1], b[1]) else b
                for a, b in zip(points[::2], points[1::2], strict=False)]
        if len(points) % 2:
            kept.append(points[-1])
        points[:] = kept
        self.stride *= 2

    def add(self, points: Series, point: tuple[int, float]) -> None:
        if self.pending is None or _louder(point[1], self.pending[1]):
            self.pending = point
        self.held += 1
        if self.held == self.stride:
            self.flush(points)

    def flush(self, points: Series) -> None:
        if self.pending is not None:
            points.append(self.pending)
        self.held, self.pending = 0, None
        if len(points) >= MAX_POINTS:
            self._halve(points)


def _louder(a: float, b: float) -> bool:
    if not math.isfinite(a) or not math.isfinite(b):
        return not math.isfinite(a)
    return a >= b


def _scalar(value, scalar_tags: set[str]) -> float | None:
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if value.metadata.plugin_data.plugin_name == "scalars":
        scalar_tags.add(value.tag)
    if kind == "tensor" and value.tag in scalar_tags:
        from tensorboard.util import tensor_util
        array = tensor_util.make_ndarray(value.tensor)
        return float(array) if array.size == 1 else None
    return None


def finite(points: Series) -> Series:
    return [(s, v) for s, v in points if math.isfinite(v)]
