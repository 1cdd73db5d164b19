"""The fixes a scenario knows about: its reference solution, its decoys, its alternatives.

A scenario proves that its verdict judges the root cause with two folders of fixes, each
shaped like ``solution/`` (only the files the fix changes) plus an ``about.yaml``:

- ``decoys/<name>/``: a plausible fix that leaves the bug in place, masking the symptom
  with the usual knobs or going around a lock in code. ``about.yaml`` gives ``summary``
  (what it changes), ``reason`` (one line: why it is wrong) and ``fails`` (the criteria
  that must fail on every seed because of it).
- ``alternatives/<name>/``: another fix a competent engineer would make; ``summary`` and
  ``reason`` (why it works). Every one must pass on every seed.

After a verification, :func:`match` says which known fix a candidate's change resembles,
so the explanation can fit the fix that was actually made. Nothing here imports torch.
"""

from __future__ import annotations

import difflib
import math
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _yaml, config
from .catalog import Scenario
from .errors import ConfigError

if TYPE_CHECKING:
    from .harness.candidate import Candidate

ABOUT = "about.yaml"
KINDS = ("solution", "alternative", "decoy")
MATCH_AT = 0.5  # share of changed lines (and config keys) two fixes must have in common


@dataclass(frozen=True)
class Variant:
    kind: str
    name: str
    path: Path
    summary: str
    reason: str
    fails: tuple[str, ...] = ()


def variants(scenario: Scenario, kind: str) -> list[Variant]:
    """The scenario's decoys or alternatives, in name order (those with bad metadata too:
    :func:`problems` reports them).
    """
    root = scenario.decoys_dir if kind == "decoy" else scenario.alternatives_dir
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "__pycache__"):
        about = _about(folder)
        found.append(Variant(kind, folder.name, folder, " ".join(str(about.get("summary", ""))
                                                                  .split()),
                             " ".join(str(about.get("reason", "")).split()),
                             tuple(about.get("fails") or ())))
    return found


def solution(scenario: Scenario) -> Variant:
    return Variant("solution", "reference", scenario.solution_dir, "the reference fix", "")


def _about(folder: Path) -> dict[str, Any]:
    try:
        about = _yaml.load_file(folder / ABOUT)
    except Exception:  # missing or malformed: problems() says which
        return {}
    return about if isinstance(about, dict) else {}


def problems(scenario: Scenario, min_decoys: int = 3, min_alternatives: int = 1) -> list[str]:
    """Static problems of the decoys and alternatives, as sentences."""
    from .criteria import NAMES
    decoys, alternatives = variants(scenario, "decoy"), variants(scenario, "alternative")
    found = []
    if len(decoys) < min_decoys:
        found.append(f"the scenario has {len(decoys)} decoys in decoys/ (at least {min_decoys}: "
                     "plausible fixes that leave the bug in place, each of which must fail)")
    if len(alternatives) < min_alternatives:
        found.append(f"the scenario has {len(alternatives)} alternatives in alternatives/ (at "
                     f"least {min_alternatives}: other right fixes, each of which must pass)")
    for variant in decoys + alternatives:
        where = f"{variant.kind} '{variant.name}'"
        if not (variant.path / ABOUT).is_file():
            found.append(f"{where} has no {ABOUT} with its summary and reason")
            continue
        try:
            _yaml.load_file(variant.path / ABOUT)
        except ConfigError as exc:  # it names the file and the cause
            found.append(f"{where}: {exc}")
            continue
        if not variant.summary or not variant.reason:
            found.append(f"{where}: {ABOUT} needs a one-line 'summary' and 'reason'")
        files = [p.name for p in variant.path.iterdir() if p.is_file() and p.name != ABOUT]
        if not files:
            found.append(f"{where} changes no file")
        found += [f"{where} holds {name}, which the scenario does not let users edit"
                  for name in files if name not in scenario.editable]
        if files and all(_same(variant.path / n, scenario.path / n) for n in files):
            found.append(f"{where} is identical to the shipped files")
        if variant.kind == "decoy":
            if not variant.fails:
                found.append(f"{where}: {ABOUT} needs 'fails', the criteria it must fail")
            found += [f"{where}: 'fails' names '{name}', which is not a criterion "
                      f"({', '.join(NAMES)})" for name in variant.fails if name not in NAMES]
    return found


def _same(a: Path, b: Path) -> bool:
    return b.is_file() and a.read_bytes() == b.read_bytes()


# -- matching a candidate to a known fix ---------------------------------------------------
def _normal(line: str) -> str:
    return re.sub(r"\s+", " ", line.split("#", 1)[0]).strip()


def _located(path: Path) -> list[tuple[str, str]]:
    """Each code line with the function it sits in: ``model.eval()`` in ``predict`` and
    ``model.eval()`` in ``train`` are different fixes.
    """
    located, where = [], "<module>"
    with tokenize.open(path) as source:  # a candidate's file may declare its encoding
        text = source.read()
    for raw in text.splitlines():
        line = _normal(raw)
        if not line:
            continue
        if raw.startswith(("def ", "class ", "async def ")):
            where = line.split("(")[0].split(":")[0].split()[-1]
        located.append((where, line))
    return located


def _code_changes(shipped: Path, fixed: Path) -> set[tuple[str, str]]:
    before, after = _located(shipped), _located(fixed)
    changed = set()
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op != "equal":
            changed |= {("-", f"{w}: {line}") for w, line in before[a0:a1]}
            changed |= {("+", f"{w}: {line}") for w, line in after[b0:b1]}
    return changed


def _config_changes(scenario: Scenario, resolved: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Changed config values: key -> (shipped value, new value)."""
    shipped = config.flatten(_yaml.load_file(scenario.config_path))
    return {key: (shipped.get(key), value) for key, value in config.flatten(resolved).items()
            if shipped.get(key) != value}


@dataclass(frozen=True)
class Fix:
    """A fix as what it changes: code lines (by function) and config values."""

    code: frozenset[tuple[str, str]]
    config: dict[str, tuple[Any, Any]]

    def __bool__(self) -> bool:
        return bool(self.code or self.config)


def changes(scenario: Scenario, pipeline: Path, resolved: dict[str, Any]) -> Fix:
    return Fix(frozenset(_code_changes(scenario.pipeline_path, pipeline)),
               _config_changes(scenario, resolved))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _closeness(mine: tuple[Any, Any], theirs: tuple[Any, Any]) -> float:
    """1 for the same new value; for numbers moved the same way from the shipped value,
    closer to 1 the nearer they are in orders of magnitude (lr 0.03 is nearly lr 0.02).
    """
    (before, a), (_, b) = mine, theirs
    if a == b:
        return 1.0
    if not all(_number(v) for v in (before, a, b)) or min(a, b) <= 0:
        return 0.0
    if (a > before) != (b > before):
        return 0.0
    return 1.0 / (1.0 + abs(math.log10(a / b)))


def similarity(mine: Fix, theirs: Fix) -> float:
    """Shared changes over all changes (Jaccard), config values counted by closeness."""
    shared = len(mine.code & theirs.code) + sum(
        _closeness(mine.config[k], theirs.config[k]) for k in mine.config.keys() & theirs.config)
    union = len(mine.code | theirs.code) + len(mine.config.keys() | theirs.config.keys())
    return shared / union if union else 0.0


def match(scenario: Scenario, candidate: Candidate) -> dict[str, Any] | None:
    """The known fix most like the candidate's, if alike enough (see :func:`similarity`)."""
    from .harness.candidate import make
    mine = changes(scenario, candidate.pipeline, candidate.config)
    if not mine:
        return None
    best: tuple[float, Variant] | None = None
    for variant in [solution(scenario), *variants(scenario, "alternative"),
                    *variants(scenario, "decoy")]:
        try:
            known = make(scenario, solution=variant.kind == "solution",
                         variant=None if variant.kind == "solution" else variant.path)
        except Exception:  # a variant the rules refuse is no basis for a match
            continue
        score = similarity(mine, changes(scenario, known.pipeline, known.config))
        if best is None or score > best[0]:
            best = (score, variant)
    if best is None or best[0] < MATCH_AT:
        return None
    score, variant = best
    return {"kind": variant.kind, "name": variant.name, "summary": variant.summary,
            "reason": variant.reason, "similarity": round(score, 2)}
