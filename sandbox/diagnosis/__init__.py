"""The loss-curve doctor: name the symptoms in any TensorBoard log directory.

    from sandbox.diagnosis import diagnose
    for run in diagnose("runs/"):
        for finding in run.findings:
            print(run.name, finding.symptom, finding.step, finding.evidence)

Curve rules (diverging, not-learning, oscillating, overfitting) need only a loss tag;
gradient and activation rules run where that telemetry exists (the sandbox's runs, or
a loop with :class:`sandbox.probe.Probe` in it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import story
from .advice import SYMPTOMS
from .detectors import MASKED_BY, RULES
from .logs import NoEventFiles, RunLog, Series, run_files
from .tags import Curves, curves

__all__ = ["SYMPTOMS", "Finding", "NoEventFiles", "RunDiagnosis", "diagnose",
           "diagnose_run", "diagnose_scalars"]


@dataclass(frozen=True)
class Finding:
    """One symptom. ``follows`` names the run's primary finding when this one is told as
    consistent with it (see :mod:`.story`); the primary and a lone finding have None.
    """

    symptom: str
    step: int | None
    evidence: str
    follows: str | None = None

    @property
    def title(self) -> str:
        return SYMPTOMS[self.symptom].title

    @property
    def causes(self) -> tuple[str, ...]:
        return self._consistent(SYMPTOMS[self.symptom].causes)

    @property
    def fixes(self) -> tuple[str, ...]:
        return self._consistent(SYMPTOMS[self.symptom].fixes)

    def _consistent(self, lines: tuple[str, ...]) -> tuple[str, ...]:
        """Less the lines that put the learning rate the other way from the primary."""
        if self.follows and story.against(self.follows, self.symptom):
            return tuple(line for line in lines if not story.moves_learning_rate(line))
        return lines

    def to_json(self) -> dict[str, Any]:
        found = {"symptom": self.symptom, "step": self.step, "evidence": self.evidence}
        return found | ({"follows": self.follows} if self.follows else {})


@dataclass
class RunDiagnosis:
    """One run: its findings, and notes on what could not be checked and why."""

    name: str
    path: Path
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    readable: bool = True

    @property
    def primary(self) -> Finding | None:
        """The finding that explains the others (the first: findings come in story order)."""
        return self.findings[0] if self.findings else None

    def to_json(self) -> dict[str, Any]:
        return {"run": self.name, "findings": [f.to_json() for f in self.findings],
                "notes": self.notes}


def diagnose_scalars(scalars: dict[str, Series]) -> list[Finding]:
    """Every rule over one run's scalars (tag -> [(step, value)])."""
    return _findings(curves(scalars))


def _findings(found: Curves) -> list[Finding]:
    hits: dict[str, tuple[int | None, str]] = {}
    for symptom, rule in RULES.items():
        hit = rule(found)
        if hit is not None:
            hits[symptom] = hit
    kept = sorted((symptom for symptom in hits
                   if not set(MASKED_BY.get(symptom, ())) & hits.keys()), key=story.rank)
    primary = kept[0] if kept else None
    return [Finding(symptom, *hits[symptom], follows=None if symptom == primary else primary)
            for symptom in kept]


def diagnose_run(log: RunLog) -> RunDiagnosis:
    found = curves(log.scalars)
    result = RunDiagnosis(log.name, log.path, notes=list(log.problems))
    if not log.scalars:
        result.readable = False
        result.notes.append("no scalars in this run's event files")
        return result
    if not found.train_loss:
        result.readable = False
        result.notes.append("no training-loss tag among: " + ", ".join(list(log.scalars)[:12])
                            + ("..." if len(log.scalars) > 12 else "")
                            + ". Name it like loss/train, train_loss or Loss/train.")
        return result
    result.findings = _findings(found)
    if not (found.grad_layers or found.grad_global):
        result.notes.append("no gradient telemetry: gradient rules skipped "
                            "(sandbox.probe.Probe writes it)")
    return result


ProgressFn = Callable[[int, int, str], None]  # (runs done, runs in all, the next run's name)


def diagnose(path: str | Path, on_run: ProgressFn | None = None) -> list[RunDiagnosis]:
    """Every run at or below ``path``, read and diagnosed one at a time (so memory is one
    run's scalars, however big the folder); raises :class:`NoEventFiles` when there is
    none, or when no run holds a loss curve to read. ``on_run`` hears before each run.
    """
    found = run_files(Path(path))
    runs = []
    for index, files in enumerate(found):
        if on_run is not None:
            on_run(index, len(found), files.name)
        runs.append(diagnose_run(files.read()))
    if not any(run.readable for run in runs):
        reasons = sorted({note for run in runs for note in run.notes})
        raise NoEventFiles(f"nothing to diagnose under {path}: " + "; ".join(reasons))
    return runs
