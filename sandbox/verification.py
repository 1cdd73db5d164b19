"""Verification: run a candidate on every seed and judge each seed against the criteria.

The criteria are checked by the harness on what it measured itself (the hidden-test
metric through the pipeline's own ``predict``, the optimizer steps it counted), plus the
logged training curve. Every seed must pass every criterion.
"""

from __future__ import annotations

import importlib
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .catalog import Criteria, Scenario
from .diagnosis import Finding
from .errors import ConfigError
from .harness import pool
from .harness.candidate import Candidate, fingerprint
from .harness.candidate import make as make_candidate
from .harness.job import Job


@dataclass(frozen=True)
class Check:
    """One criterion on one seed: what was required, what was measured."""

    name: str
    required: str
    measured: str
    passed: bool


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
    results: list[dict[str, Any]] = field(default_factory=list, repr=False)
    baseline: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def passed(self) -> bool:
        return bool(self.seeds) and all(s.passed for s in self.seeds)

    @property
    def failed_checks(self) -> list[str]:
        return sorted({c.name for s in self.seeds for c in s.checks if not c.passed})

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "candidate": self.candidate,
                "description": self.description,
                "verdict": "pass" if self.passed else "fail",
                "failed_criteria": self.failed_checks,
                "seeds": [{**asdict(s), "passed": s.passed} for s in self.seeds],
                "run_group": self.run_group, "png": self.png,
                "wall_time_s": round(self.wall_time_s, 2)}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "not measured" if value is None else f"{value:.{digits}g}"


def judge(result: dict[str, Any], criteria: Criteria) -> SeedVerdict:
    """Every criterion for one seed's result, failed ones saying by how much."""
    status, error = result["status"], result.get("error")
    loss_final, test, val = (result.get("train_loss_final"), result.get("test/metric"),
                             result.get("val_metric"))
    checks = [Check("completes", "returns a model",
                    "completed" if status == "ok" else f"no: {error}", status == "ok")]
    if status == "diverged":
        finite = Check("finite loss", "finite", error or "non-finite", False)
    elif result.get("train_loss_points"):
        finite = Check("finite loss", "finite",
                       f"finite ({result['train_loss_points']} values)",
                       math.isfinite(loss_final or math.nan))
    else:
        finite = Check("finite loss", "finite", "no loss/train was logged", False)
    checks.append(finite)
    checks.append(Check("train loss", f"<= {criteria.train_loss_max:g}",
                        _fmt(loss_final), loss_final is not None
                        and loss_final <= criteria.train_loss_max))
    checks.append(Check("test accuracy", f">= {criteria.test_metric_min:g}",
                        _fmt(test), test is not None and test >= criteria.test_metric_min))
    gap = None if test is None or val is None else abs(val - test)
    checks.append(Check("honest validation",
                        f"|val - test| <= {criteria.val_tolerance:g}",
                        "not measured" if gap is None and val is not None else
                        "no metric/val was logged" if val is None else
                        f"gap {gap:.3f} (val {val:.3f})",
                        gap is not None and gap <= criteria.val_tolerance))
    checks.append(_budget(result, criteria))
    return SeedVerdict(result["seed"], status, error, tuple(checks), result["run_dir"],
                       result.get("device"))


def _budget(result: dict[str, Any], criteria: Criteria) -> Check:
    steps, params = result.get("steps"), result.get("params")
    required = f"<= {criteria.max_steps} steps"
    measured = "not measured" if steps is None else f"{steps} steps"
    passed = steps is not None and steps <= criteria.max_steps
    if criteria.max_params is not None:
        required += f", <= {criteria.max_params} params"
        measured += f", {params if params is not None else '?'} params"
        passed = passed and params is not None and params <= criteria.max_params
    return Check("budget", required, measured, passed)


EventFn = Callable[[Job, str, Any], None]


def verify(scenario: Scenario, candidate: Candidate, *, seeds: Sequence[int] | None = None,
           device: str = "auto", logdir: Path = Path("runs"), on_event: EventFn | None = None,
           with_baseline: bool = True, plot: bool = True) -> Verification:
    """Run ``candidate`` on each seed in parallel child processes and judge every seed.

    When the candidate is not the shipped pipeline and no recorded broken run of this
    exact scenario exists under ``logdir``, seed 0 of the shipped pipeline runs alongside,
    so the PNG can put the broken and the candidate curves side by side.
    """
    started = time.monotonic()
    if plot:  # matplotlib's import (~1 s) overlaps the training instead of following it
        threading.Thread(target=importlib.import_module, args=("sandbox.plots",),
                         daemon=True).start()
    threading.Thread(target=importlib.import_module,  # so does tensorboard's reader's
                     args=("tensorboard.backend.event_processing.event_file_loader",),
                     daemon=True).start()
    seeds = list(seeds if seeds is not None else scenario.seeds)
    group = new_run_group(Path(logdir) / scenario.id, candidate.label)
    jobs = [_job(scenario, candidate, seed, device, group / f"seed{seed}") for seed in seeds]
    baseline = [] if candidate.is_shipped or not with_baseline else find_baseline(scenario, logdir)
    extra: list[Job] = []
    if with_baseline and not candidate.is_shipped and not baseline:
        base_group = new_run_group(Path(logdir) / scenario.id, "shipped")
        shipped = make_candidate(scenario)
        extra = [_job(scenario, shipped, seeds[0], device, base_group / f"seed{seeds[0]}")]
    results = pool.run_jobs(jobs + extra, scenario.criteria.time_limit_s, on_event)
    ours, baseline = results[:len(jobs)], baseline or results[len(jobs):]
    verdicts = [replace(judge(r, scenario.criteria), findings=diagnose_seed(r["run_dir"]))
                for r in ours]
    outcome = Verification(scenario.id, candidate.label, candidate.description, verdicts,
                           str(group), results=ours, baseline=baseline)
    if extra:
        _write_group(base_group, scenario, shipped, results[len(jobs):])
    if plot:
        from .plots import draw_curves
        outcome.png = str(draw_curves(group / "curves.png", scenario, outcome))
    outcome.wall_time_s = time.monotonic() - started
    _write_group(group, scenario, candidate, ours, outcome)
    return outcome


def diagnose_seed(run_dir: str) -> tuple[Finding, ...]:
    """The diagnoser's findings on one seed's event files, as ``sandbox diagnose`` would
    print them for that folder.
    """
    from .diagnosis import NoEventFiles, diagnose
    try:
        return tuple(diagnose(run_dir)[0].findings)
    except NoEventFiles:  # a seed that crashed before logging anything
        return ()


def _job(scenario: Scenario, candidate: Candidate, seed: int, device: str, run_dir: Path) -> Job:
    return Job(scenario.id, seed, str(candidate.pipeline), candidate.config, device,
               str(run_dir.resolve()), scenario.criteria.serve_batch_size,
               scenario.criteria.memory_limit_mb)


def new_run_group(parent: Path, label: str) -> Path:
    """``runs/<scenario>/<yyyymmdd-hhmmss>-<label>``, never reusing an existing folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        path = parent / (f"{stamp}-{label}" if n == 1 else f"{stamp}-{n}-{label}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise ConfigError(f"cannot write run logs under {parent}: {exc.strerror}. "
                              "Choose another folder with --logdir.") from None
    raise ConfigError(f"could not create a new run folder under {parent}")


def _write_group(group: Path, scenario: Scenario, candidate: Candidate,
                 results: list[dict[str, Any]], outcome: Verification | None = None) -> None:
    """The resolved config next to the logs, and a record the baseline lookup reads."""
    (group / "config.yaml").write_text(yaml.safe_dump(candidate.config, sort_keys=False))
    record = {"scenario": scenario.id, "fingerprint": fingerprint(scenario),
              "candidate": candidate.label, "results": results}
    if outcome is not None:
        record["verification"] = outcome.to_json()
    (group / "record.json").write_text(json.dumps(record, default=str))


def find_baseline(scenario: Scenario, logdir: Path) -> list[dict[str, Any]]:
    """The newest recorded run of this exact shipped pipeline, if any."""
    want = fingerprint(scenario)
    for record_path in sorted((Path(logdir) / scenario.id).glob("*-shipped/record.json"),
                              reverse=True):
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("fingerprint") == want and record.get("results"):
            return record["results"][:1]
    return []
