"""Verification: run a candidate on every seed and judge each seed against the criteria.

The criteria are checked here, in the grading process, on what the harness measured
itself: the hidden-test metric from the raw predictions the seed sent back (the labels
never leave this process), the rows the model trained and validated on, the gradient
samples it spent, the model it returned. The pipeline's own figures are compared, never
trusted. Every seed must pass every criterion.

The hidden test sample is drawn from the seed and a salt: random for each verification,
or fixed by ``SANDBOX_TEST_SALT`` (graders who want every candidate scored on the same
sample). The variable is removed from the environment before any seed starts.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from . import data as datasets
from . import integrity, scoring
from . import reference as references
from .catalog import Scenario
from .criteria import REVEALING, Check, judge_seeds
from .diagnosis import Finding
from .errors import ConfigError
from .events import EventWriter
from .files import Folder
from .harness import pool
from .harness.candidate import Candidate, fingerprint
from .harness.candidate import make as make_candidate
from .harness.job import Job
from .harness.protocol import MalformedMessage
from .reference import Reference
from .runs import attempt_number, find_baseline, new_run_group, run_label

SALT_ENV = "SANDBOX_TEST_SALT"
_FIXED_SALT = os.environ.pop(SALT_ENV, None)  # never inherited by a seed's process

__all__ = ["Check", "SeedVerdict", "Verification", "verify", "verify_many"]


@dataclass(frozen=True)
class SeedVerdict:
    seed: int
    status: str
    error: str | None
    checks: tuple[Check, ...]
    run_dir: str
    device: str | None = None
    findings: tuple[Finding, ...] = ()

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


@dataclass
class Verification:
    """The whole result: what ``--json`` prints and what the PNG shows."""

    scenario: str
    candidate: str
    description: str
    seeds: list[SeedVerdict]
    run_group: str
    png: str | None = None
    wall_time_s: float = 0.0
    flags: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    matched: dict[str, Any] | None = None
    results: list[dict[str, Any]] = field(default_factory=list, repr=False)
    baseline: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def passed(self) -> bool:
        return bool(self.seeds) and all(s.passed for s in self.seeds)

    @property
    def failed_checks(self) -> list[str]:
        return sorted({c.name for s in self.seeds for c in s.checks if not c.passed})

    @property
    def reveals_root_cause(self) -> bool:
        """Some seed meets every criterion that does not name the bug (see REVEALING)."""
        return any(all(c.passed for c in s.checks if c.name not in REVEALING)
                   for s in self.seeds)

    @property
    def shown_checks(self) -> list[str]:
        """The criteria a person is shown: the revealing ones only when they decide."""
        return [c.name for c in self.seeds[0].checks
                if c.name not in REVEALING or self.reveals_root_cause] if self.seeds else []

    @property
    def shown_failed(self) -> list[str]:
        return [name for name in self.failed_checks if name in self.shown_checks]

    def to_json(self) -> dict[str, Any]:
        """Strict JSON: NaN and infinities (a diverged loss, say) become null."""
        return strict(self._record())

    def _record(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "candidate": self.candidate,
                "description": self.description,
                "verdict": "pass" if self.passed else "fail",
                "failed_criteria": self.failed_checks,
                "seeds": [{**asdict(s), "passed": s.passed,
                           "measured": _measurements(r)}
                          for s, r in zip(self.seeds, self.results, strict=False)],
                "flags": self.flags, "matched": self.matched,
                "provenance": self.provenance,
                "run_group": self.run_group, "png": self.png,
                "wall_time_s": round(self.wall_time_s, 2)}


def strict(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, for strict JSON parsers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def _measurements(result: dict[str, Any]) -> dict[str, Any]:
    """The raw figures behind a seed's checks, for graders' own analysis."""
    keys = ("steps", "samples", "train_loss_first", "train_loss_final", "val_metric",
            "clipping", "serving", "model", "tampered", "gradient_hooks", "train_time_s",
            "torch", *scoring.MEASUREMENTS)
    return {k: result.get(k) for k in keys}


EventFn = Callable[[Job, str, Any], None]


def use_fixed_salt(text: str | None) -> None:
    """Draw every later hidden sample with this salt (None: random again), as
    ``SANDBOX_TEST_SALT`` does for the CLI: graders scoring many candidates in Python.
    """
    global _FIXED_SALT
    _FIXED_SALT = text


def hidden_salt() -> tuple[bytes, dict[str, str]]:
    """The salt of the hidden sample, and how it was chosen (for the provenance)."""
    if _FIXED_SALT is not None:
        salt, how = hashlib.sha256(_FIXED_SALT.encode()).digest()[:16], f"fixed by {SALT_ENV}"
    else:
        salt, how = secrets.token_bytes(16), "random for this verification"
    return salt, {"salt": how, "digest": hashlib.sha256(salt).hexdigest()[:12]}


class HiddenSplits:
    """The hidden test splits of one verification. They leave this process only as inputs
    without labels, written for a seed after its ``train()`` has returned.
    """

    def __init__(self, salt: bytes):
        self._salt = salt
        self.served: list[str] = []
        self._splits: dict[tuple[str, int], tuple[datasets.Split, datasets.Split]] = {}

    def get(self, data_cfg: dict[str, Any], seed: int) -> tuple[datasets.Split, datasets.Split]:
        key = (json.dumps(data_cfg, sort_keys=True), seed)
        if key not in self._splits:
            self._splits[key] = datasets.build(data_cfg, seed, self._salt)
        return self._splits[key]

    def serve(self, job: Job) -> dict[str, Any]:
        """Write the inputs to a fresh file of the grader's (``mkstemp``: a new, unguessable
        name, so nothing the candidate planted can be written through or block).
        """
        _, test = self.get(job.config["data"], job.seed)
        fd, path = tempfile.mkstemp(prefix="sandbox-inputs-", suffix=".npy")
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, test.x, allow_pickle=False)
        self.served.append(path)
        return {"kind": "serve", "inputs": path}


@dataclass
class Executed:
    """What running candidates together produced, before judging, and the run folders,
    held open (see :class:`sandbox.files.Folder`) until :meth:`close`.
    """

    groups: list[Path]
    results: list[list[dict[str, Any]]]
    baseline: list[dict[str, Any]]
    hidden: dict[str, str]
    started: float
    folders: dict[str, Folder] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)  # wall clock, for the records

    def close(self) -> None:
        for folder in self.folders.values():
            folder.close()


def verify(scenario: Scenario, candidate: Candidate, *, seeds: Sequence[int] | None = None,
           device: str = "auto", logdir: Path = Path("runs"), on_event: EventFn | None = None,
           with_baseline: bool = True, plot: bool = True,
           reference: Reference | None = None) -> Verification:
    """Run ``candidate`` on each seed in parallel child processes and judge every seed.

    When the candidate is not the shipped pipeline and no recorded broken run of this
    exact scenario exists under ``logdir``, the shipped pipeline runs alongside on the same
    seeds, so the PNG can put every broken seed next to the candidate's.
    """
    return verify_many(scenario, [candidate], seeds=seeds, device=device, logdir=logdir,
                       on_event=on_event, with_baseline=with_baseline, plot=plot,
                       reference=reference)[0]


def verify_many(scenario: Scenario, candidates: Sequence[Candidate], *,
                seeds: Sequence[int] | None = None, device: str = "auto",
                logdir: Path = Path("runs"), on_event: EventFn | None = None,
                with_baseline: bool = True, plot: bool = True,
                reference: Reference | None = None) -> list[Verification]:
    """Several candidates of one scenario in one pool of processes (what ``check`` does)."""
    done = execute(scenario, candidates, seeds=seeds, device=device, logdir=logdir,
                   on_event=on_event, with_baseline=with_baseline, plot=plot)
    judged_against = (reference, None) if reference is not None else references.load(scenario)
    try:
        return [conclude(scenario, c, g, r, done, judged_against, plot=plot)
                for c, g, r in zip(candidates, done.groups, done.results, strict=True)]
    finally:
        done.close()


def execute(scenario: Scenario, candidates: Sequence[Candidate], *,
            seeds: Sequence[int] | None = None, device: str = "auto",
            logdir: Path = Path("runs"), on_event: EventFn | None = None,
            with_baseline: bool = True, plot: bool = True) -> Executed:
    """Run every candidate on every seed and score the results; no verdict yet."""
    started = time.monotonic()
    _preload(plot)
    seeds = list(seeds if seeds is not None else scenario.seeds)
    salt, hidden_info = hidden_salt()
    hidden = HiddenSplits(salt)
    needs_baseline = with_baseline and not all(c.is_shipped for c in candidates)
    baseline = find_baseline(scenario, logdir, seeds) if needs_baseline else []
    extra: list[Job] = []
    if needs_baseline and not baseline:  # numbered first: the attempts come after it
        shipped = make_candidate(scenario)
        base_group = new_run_group(Path(logdir) / scenario.id, run_label(scenario, shipped))
        extra = [_job(scenario, shipped, seed, device, base_group / f"seed{seed}")
                 for seed in seeds]
    groups = [new_run_group(Path(logdir) / scenario.id, run_label(scenario, c))
              for c in candidates]
    jobs = [_job(scenario, c, seed, device, g / f"seed{seed}")
            for c, g in zip(candidates, groups, strict=True) for seed in seeds]
    groups_held = [*groups, base_group] if extra else groups
    done = Executed(groups, [], baseline, hidden_info, started)
    for folder in [*groups_held, *(Path(j.run_dir) for j in jobs + extra)]:
        folder.mkdir(parents=True, exist_ok=True)
        done.folders[str(folder)] = Folder(folder)  # before any candidate's code runs
    try:
        raw = pool.run_jobs(jobs + extra, scenario.criteria.time_limit_s, on_event,
                            serve=hidden.serve)
    except BaseException:
        done.close()
        raise
    finally:
        for path in hidden.served:
            Path(path).unlink(missing_ok=True)
    unavailable = next((r for r in raw if r["status"] == "bad-device"), None)
    if unavailable is not None:  # bad input, whichever command asked (exit 2, not a fail)
        done.close()
        raise ConfigError(unavailable.get("error") or f"--device {device} is not available")
    scored = [_score(r, j, hidden, done.folders[j.run_dir], scenario.criteria.metric)
              for r, j in zip(raw, jobs + extra, strict=True)]
    if extra:
        done.baseline = scored[len(jobs):]
        _write_group(done.folders[str(base_group)], scenario, shipped, done.baseline,
                     started=done.started_at)
    per = len(seeds)
    done.results = [scored[i * per:(i + 1) * per] for i in range(len(candidates))]
    return done


def conclude(scenario: Scenario, candidate: Candidate, group: Path,
             results: list[dict[str, Any]], done: Executed,
             reference: tuple[Reference | None, str | None], plot: bool = True) -> Verification:
    """Judge one candidate's scored results: verdicts, flags, provenance, PNG, record."""
    from .variants import match
    verdicts = [SeedVerdict(r["seed"], r["status"], r.get("error"), tuple(checks), r["run_dir"],
                            r.get("device"), diagnose_seed(done.folders[r["run_dir"]]))
                for r, checks in zip(results, judge_seeds(results, scenario, reference),
                                          strict=True)]
    outcome = Verification(
        scenario.id, candidate.label, candidate.description, verdicts, str(group),
        flags=integrity.flags(results, candidate, reference[0], scenario.criteria.val_tolerance,
                              scenario.criteria.test_metric),
        provenance=integrity.provenance(scenario, candidate, results, done.hidden),
        matched=None if candidate.is_shipped else match(scenario, candidate),
        results=results, baseline=done.baseline)
    folder = done.folders[str(group)]
    if plot:
        from .plots import draw_curves
        folder.write("curves.png", draw_curves(scenario, outcome))
        outcome.png = str(group / "curves.png")
    outcome.wall_time_s = time.monotonic() - done.started
    _write_group(folder, scenario, candidate, results, outcome, started=done.started_at)
    return outcome


def _preload(plot: bool) -> None:
    """Matplotlib's and tensorboard's imports (~1 s) overlap the training."""
    modules = ["tensorboard.backend.event_processing.event_file_loader"]
    if plot:
        modules.append("sandbox.plots")
    for name in modules:
        threading.Thread(target=importlib.import_module, args=(name,), daemon=True).start()


LOGGED_AS_ERROR = ("mae", "rmse")  # tags the diagnoser reads as lower-is-better


def _score(result: dict[str, Any], job: Job, hidden: HiddenSplits,
           folder: Folder, metric: str) -> dict[str, Any]:
    """The grader's measurements, added to the seed's result and logged next to its own."""
    dev, test = hidden.get(job.config["data"], job.seed)
    try:
        result.update(scoring.score(result, dev, test, metric))
    except MalformedMessage as exc:
        result.update(dict.fromkeys(scoring.MEASUREMENTS), status="malformed",
                      error=f"sent results the grader could not accept ({exc})")
    steps = [s for points in (result.get("series") or {}).values() for s, _ in points]
    last = max([result.get("steps") or 0, *steps])
    logged = {tag: result[tag] for tag in ("test/metric", "serve/batch_dependence",
                                           "serve/output_shift", "serve/repeat_change",
                                           "val/measured")
              if result.get(tag) is not None}
    if metric in LOGGED_AS_ERROR and "test/metric" in logged:  # says its direction
        logged[f"test/metric_{metric}"] = logged.pop("test/metric")
    if logged:
        writer = EventWriter(Path(job.run_dir), suffix="grader", dir_fd=folder.fd)
        for tag, value in logged.items():
            writer.add(tag, value, last)
        writer.close()
    return result


HARNESS_EVENTS = re.compile(r"^events\.out\.tfevents\..*\.(sandbox|grader)(\.\d+)?$")
MAX_DIAGNOSED_BYTES = 2 * 2**20  # far above any catalog run; a planted giant is skipped


def diagnose_seed(folder: Folder) -> tuple[Finding, ...]:
    """The diagnoser's findings on one seed's event files, as ``sandbox diagnose`` would
    print them, reading only the harness's own files through the folder's handle (a
    candidate can plant others, huge or unreadable, in its folder).
    """
    from .diagnosis import diagnose_run
    from .diagnosis.logs import read_files
    try:
        entries = [e for e in os.scandir(folder.inside) if HARNESS_EVENTS.match(e.name)
                   and e.is_file(follow_symlinks=False)
                   and e.stat(follow_symlinks=False).st_size <= MAX_DIAGNOSED_BYTES]
        log = read_files([Path(folder.inside) / e.name for e in entries], ".", folder.path)
        return tuple(diagnose_run(log).findings)
    except OSError:
        return ()


def _job(scenario: Scenario, candidate: Candidate, seed: int, device: str, run_dir: Path) -> Job:
    return Job(scenario.id, seed, str(candidate.pipeline), candidate.config, device,
               str(run_dir.resolve()), scenario.criteria.serve_batch_size,
               scenario.criteria.memory_limit_mb, max_steps=scenario.criteria.max_steps,
               max_samples=scenario.criteria.max_samples)


# -- run folders ------------------------------------------------------------------------
# ``runs/<scenario>/attempt-07 optimizer.lr=0.02``: TensorBoard's run selector shows the
# folder names, so each says which attempt it was and what it changed from the shipped
# pipeline (``attempt-01 shipped (broken)``, ``attempt-04 workspace (pipeline.py edited)``).
# Folders written before this naming (``20250101-120000-shipped``) are read all the same.
def _write_group(group: Folder, scenario: Scenario, candidate: Candidate,
                 results: list[dict[str, Any]], outcome: Verification | None = None,
                 started: float | None = None) -> None:
    """The resolved config next to the logs, and a record the baseline lookup reads: what
    ran (``candidate``: ``shipped``, ``workspace``...), its attempt number, folder name
    and start time, then the results. The fields before ``results`` are short, so the
    run list reads them without loading whole records (see :func:`recorded_runs`).
    """
    group.write("config.yaml", yaml.safe_dump(candidate.config, sort_keys=False).encode())
    when = time.localtime(started if started is not None else time.time())
    record = {"scenario": scenario.id, "fingerprint": fingerprint(scenario),
              "candidate": candidate.label, "attempt": attempt_number(group.path.name),
              "run": group.path.name, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", when),
              "changes": run_label(scenario, candidate), "results": results}
    if outcome is not None:
        record["verification"] = outcome.to_json()
    group.write("record.json", json.dumps(strict(record), default=str, allow_nan=False).encode())
