"""Practice: attempts on workspaces, hints, reveals, and picking scenarios for a drill.

An attempt is one timed go at one scenario. ``start`` opens it (the clock starts), a
passing verification of the workspace solves it, a hint adds to its score, showing the
solution marks it revealed (a revealed attempt never counts as solved-clean). The rules
for the clock, in one place:

- ``start`` on a new workspace opens an attempt; on an existing one it resumes the open
  attempt, or opens a new one when the last ended unsolved (skipped, timed out).
- ``start --reset`` (and every drill) backs the folder up, lays down fresh files and
  opens a new attempt; hints taken and a solution shown on an unfinished attempt carry
  over to the new one.
- A hint or a reveal before ``start`` opens the attempt (and starts the clock).
- A workspace verified with no open attempt is recorded, but solves nothing.
"""

from __future__ import annotations

import difflib
import math
import random
from dataclasses import dataclass
from pathlib import Path

from .catalog import Scenario
from .errors import ConfigError
from .history import Attempt, History
from .home import Workspace, ensure_home

DRILL = {"count": 3, "minutes": 30.0}
INTERVIEW = {"count": 2, "minutes": 45.0}  # a typical 45-minute debugging round


@dataclass(frozen=True)
class Started:
    workspace: Workspace
    attempt: Attempt
    resumed: bool  # the workspace existed and its files were kept
    backup: Path | None = None


def start(scenario: Scenario, home: Path, history: History, *, reset: bool = False,
          mode: str = "practice", drill_id: int | None = None) -> Started:
    """Make or resume the workspace and the attempt the rules above describe."""
    ensure_home(home)
    ws = Workspace(scenario, home)
    latest = history.latest(scenario.id)
    if reset or not ws.exists():
        backup = ws.reset()
        if not reset and latest is not None and latest.status == "open":
            return Started(ws, latest, resumed=False, backup=backup)  # a hint started it
        attempt = history.open_attempt(scenario.id, mode=mode, drill_id=drill_id)
        return Started(ws, attempt, resumed=False, backup=backup)
    if latest is None:  # the workspace outlived its history: time it from its creation
        latest = history.open_attempt(scenario.id, started_at=ws.created_at())
    elif latest.status not in ("open", "solved"):
        latest = history.open_attempt(scenario.id)
    return Started(ws, latest, resumed=True)


def current_attempt(scenario: Scenario, history: History) -> Attempt:
    """The attempt a hint or a reveal is charged to: the open one, else a new one (a hint
    taken before ``start`` starts the clock, so it still costs).
    """
    latest = history.latest(scenario.id)
    if latest is not None and latest.status in ("open", "solved"):
        return latest
    return history.open_attempt(scenario.id)


def take_hint(scenario: Scenario, history: History) -> tuple[Attempt, int, bool]:
    """Reveal the next hint: (attempt, hints now used, whether this one was new).

    Hints on a solved attempt are free: the clock has stopped.
    """
    attempt = current_attempt(scenario, history)
    if attempt.status == "solved":
        return attempt, len(scenario.hints), False
    used, new = history.add_hint(attempt.id, len(scenario.hints))
    return history.attempt(attempt.id), used, new


def reveal(scenario: Scenario, history: History) -> Attempt:
    attempt = current_attempt(scenario, history)
    if attempt.status == "open":
        history.reveal(attempt.id)
    return history.attempt(attempt.id)


def solution_diff(scenario: Scenario) -> str:
    """The reference fix as a unified diff against the shipped files."""
    chunks = []
    for fixed in sorted(p for p in scenario.solution_dir.rglob("*") if p.is_file()):
        name = fixed.relative_to(scenario.solution_dir).as_posix()
        shipped = scenario.path / name
        before = shipped.read_text(encoding="utf-8").splitlines(keepends=True) \
            if shipped.is_file() else []
        after = fixed.read_text(encoding="utf-8").splitlines(keepends=True)
        chunks.extend(difflib.unified_diff(before, after, f"shipped/{name}",
                                           f"solution/{name}"))
    return "".join(chunks)


@dataclass(frozen=True)
class Recorded:
    attempt: Attempt | None
    solved_now: bool
    unrecorded: str | None = None  # why the history could not be written, if it could not


def record(scenario: Scenario, history: History, *, passed: bool, failed: list[str],
           wall_time_s: float, run_group: str, can_solve: bool = True) -> Recorded:
    """Record a verification of the workspace against its open attempt, if any (and if
    ``can_solve``: a run on fewer seeds than the scenario's is recorded untimed).
    """
    latest = history.latest(scenario.id)
    attempt_id = latest.id if (latest is not None and latest.status == "open"
                               and can_solve) else None
    solved = history.record_verification(attempt_id, scenario.id, passed=passed, failed=failed,
                                         wall_time_s=wall_time_s, run_group=run_group)
    return Recorded(history.attempt(latest.id) if latest is not None else None, solved)


TUTORIAL = "tutorial"  # the tag of scenarios made for the demo: never drilled or counted


def counted(scenarios: list[Scenario]) -> list[Scenario]:
    """The catalog a candidate works through: tutorials left out."""
    return [s for s in scenarios if TUTORIAL not in s.tags]


@dataclass(frozen=True)
class Progress:
    """Where a candidate stands on one scenario, as ``list`` shows it."""

    status: str  # new (never started) | started (no clean solve yet) | solved
    best_s: float | None = None  # the best solve's score: time plus the hint penalty
    best_hints: int | None = None


def progress(scenarios: list[Scenario], attempts: list[Attempt]) -> dict[str, Progress]:
    """Each scenario's status and best time. Solved means a solve without the solution
    shown, as ``stats`` counts it.
    """
    found = {}
    for scenario in scenarios:
        mine = [a for a in attempts if a.scenario == scenario.id]
        clean = [a for a in mine if a.score_s is not None]
        if clean:
            best = min(clean, key=lambda a: a.score_s or 0.0)
            found[scenario.id] = Progress("solved", best.score_s, best.hints)
        else:
            found[scenario.id] = Progress("started" if mine else "new")
    return found


def next_unsolved(scenarios: list[Scenario], attempts: list[Attempt]) -> Scenario | None:
    """What ``sandbox next`` starts: one already started before a new one, then the
    easiest, then catalog order. None when everything is solved.
    """
    states = progress(counted(scenarios), attempts)
    open_ = [s for s in counted(scenarios) if states[s.id].status == "started"]
    fresh = [s for s in counted(scenarios) if states[s.id].status == "new"]
    for group in (open_, fresh):
        if group:
            return min(group, key=lambda s: s.difficulty)  # min is stable: catalog order
    return None


def pick(scenarios: list[Scenario], history: History | None, *, count: int,
         difficulty: int | None = None, tag: str | None = None,
         rng: random.Random | None = None) -> list[Scenario]:
    """Up to ``count`` scenarios matching the filters: unsolved ones first, in random
    order, then solved ones (with no history, all in random order).
    """
    if count < 1:
        raise ConfigError(f"--count {count}: pick at least one scenario.")
    pool = scenarios if tag == TUTORIAL else counted(scenarios)
    matching = [s for s in pool if (difficulty is None or s.difficulty == difficulty)
                and (tag is None or tag in s.tags)]
    if not matching:
        tags = sorted({t for s in scenarios for t in s.tags})
        raise ConfigError(
            f"no scenario has{f' difficulty {difficulty}' if difficulty else ''}"
            f"{' and' if difficulty and tag else ''}{f' tag {tag!r}' if tag else ''}. "
            f"Tags in the catalog: {', '.join(tags)}.")
    rng = rng or random.Random()
    attempts = history.attempts() if history is not None else []
    solved = {a.scenario for a in attempts if a.score_s is not None}
    fresh = [s for s in matching if s.id not in solved]
    done = [s for s in matching if s.id in solved]
    rng.shuffle(fresh)
    rng.shuffle(done)
    return (fresh + done)[:count]


def clock(seconds: float | None) -> str:
    """``3m07s``; an hour or more as ``1h02m``. Cut down to the whole second, as a
    stopwatch shows it, so a time reads the same everywhere it is printed (``stats``
    stores tenths, cut down too: see :func:`sandbox.history.tenths`).
    """
    if seconds is None:
        return "-"
    s = max(0, math.floor(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s"
