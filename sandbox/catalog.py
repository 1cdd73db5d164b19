"""Scenario discovery and metadata: the catalog.

A scenario is a folder holding ``scenario.yaml`` (metadata), ``pipeline.py``,
``config.yaml``, ``solution/`` (the reference fix), ``decoys/`` and ``alternatives/``
(plausible wrong fixes and other right ones, see :mod:`sandbox.variants`) and
``reference.json`` (what the shipped and the reference runs measured, see
:mod:`sandbox.reference`). ``quiz.yaml``, the quiz's questions on the scenario's curves,
is loaded and checked by :mod:`sandbox.quiz` only when a quiz or a check asks (the
one-line ``quiz:`` block the metadata used to hold is no longer read). The catalog is
built by discovery, from the bundled ``scenarios/`` and from any folder the user names,
so an interviewer can author scenarios without touching the package. Nothing here
imports torch: ``sandbox list`` and ``sandbox show`` must stay fast.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _yaml
from .errors import ConfigError, ScenarioFormatError, ScenarioNotFound, quote
from .files import is_regular
from .metrics import DEFAULT as DEFAULT_METRIC
from .metrics import METRICS, Metric

METADATA_FILE = "scenario.yaml"
REQUIRED_KEYS = ("id", "title", "difficulty", "tags", "brief", "symptoms", "hints",
                 "explanation", "editable", "verify", "seeds")
TASKS = ("classification", "regression")
WORKSPACE_FILES = ("TICKET.md", ".sandbox.json")  # what sandbox.home writes next to them
FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Criteria:
    """What every seed of a candidate must reach; checked by the harness, not the pipeline.

    The outcome criteria (loss, test metric, honest validation, budget) apply to every
    scenario. The root-cause criteria below are optional: a scenario declares the ones
    that fit its bug, so that a fix which only masks the symptom fails.
    """

    train_loss_max: float
    val_tolerance: float
    max_steps: int  # optimizer steps
    max_samples: int  # rows that gradients flowed back to, summed over backward passes
    metric: str = "accuracy"  # the hidden test's metric (sandbox.metrics.METRICS)
    test_metric_min: float | None = None  # for a metric where higher is better
    test_metric_max: float | None = None  # for one where lower is better (MAE, RMSE)
    time_limit_s: float = 60.0
    memory_limit_mb: int = 3072
    serve_batch_size: int = 32
    max_params: int | None = None
    params_tolerance: float | None = None  # capacity: parameters within this share of the
    # shipped model's, with the same weight-matrix shapes
    max_clipped_fraction: float | None = None  # share of steps whose gradient was rescaled
    serve_eval_mode: bool = False  # no BatchNorm or dropout in training mode while serving
    train_mode: bool = False  # BatchNorm and dropout in training mode at every backward pass
    max_batch_dependence: float | None = None  # largest change of a served probability
    # when the same input is served with other companions
    max_split_overlap: float | None = None  # share of validation rows whose group
    # (data.groups) the model also trained on

    @property
    def test_metric(self) -> Metric:
        return METRICS[self.metric]

    @property
    def test_threshold(self) -> float:
        """The required test score, on the side the metric's direction says."""
        value = self.test_metric_min if self.test_metric.higher_is_better else self.test_metric_max
        assert value is not None  # metadata_problems refuses a scenario without it
        return value

    def test_required(self) -> str:
        return self.test_metric.requirement(self.test_threshold)


@dataclass(frozen=True)
class Scenario:
    """One catalog entry. ``path`` is the folder; everything else comes from its metadata."""

    id: str
    title: str
    difficulty: int
    tags: tuple[str, ...]
    brief: str
    symptoms: tuple[dict[str, str], ...]
    hints: tuple[str, ...]
    explanation: str
    editable: tuple[str, ...]
    criteria: Criteria
    seeds: tuple[int, ...]
    path: Path
    task: str = "classification"
    locked: tuple[str, ...] = ()
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    choices: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    @property
    def pipeline_path(self) -> Path:
        return self.path / "pipeline.py"

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def solution_dir(self) -> Path:
        return self.path / "solution"

    @property
    def decoys_dir(self) -> Path:
        return self.path / "decoys"

    @property
    def alternatives_dir(self) -> Path:
        return self.path / "alternatives"

    @property
    def symptom_ids(self) -> tuple[str, ...]:
        return tuple(s["id"] for s in self.symptoms)

    def summary(self) -> dict[str, Any]:
        """The fields ``sandbox list --json`` prints."""
        return {"id": self.id, "title": self.title, "difficulty": self.difficulty,
                "tags": list(self.tags), "symptoms": list(self.symptom_ids),
                "path": str(self.path)}


def bundled_dir() -> Path:
    """The scenarios shipped with the package: inside an installed wheel, or the checkout."""
    here = Path(__file__).resolve().parent
    installed = here / "_bundled" / "scenarios"
    return installed if installed.is_dir() else here.parent / "scenarios"


def load_scenario(folder: Path) -> Scenario:
    """Parse one scenario folder; every problem is collected into one error."""
    folder = Path(folder).resolve()
    meta_path = folder / METADATA_FILE
    if not meta_path.is_file():
        raise ScenarioNotFound(f"{folder} is not a scenario folder: it has no {METADATA_FILE}.")
    try:
        meta = _yaml.load_file(meta_path)
    except ConfigError as exc:  # it names the file and the cause
        raise ScenarioFormatError(str(exc)) from None
    problems = metadata_problems(meta, folder)
    if problems:
        raise ScenarioFormatError(f"{meta_path} has problems:\n  - " + "\n  - ".join(problems))
    return _build(meta, folder)


def metadata_problems(meta: Any, folder: Path) -> list[str]:
    """Everything wrong with a scenario's metadata and files, as readable sentences."""
    if not isinstance(meta, dict):
        return ["the metadata must be a mapping of keys to values"]
    problems = [f"missing key '{k}'" for k in REQUIRED_KEYS if k not in meta]
    if meta.get("id") is not None and meta["id"] != folder.name:
        problems.append(f"id '{meta['id']}' differs from the folder name '{folder.name}'")
    if "-v" not in str(meta.get("id", "-v")):
        problems.append("the id must end in a version, like 'exploding-lr-v2'")
    if meta.get("difficulty") not in (1, 2, 3, None):
        problems.append(f"difficulty must be 1, 2 or 3, not {meta.get('difficulty')!r}")
    if "hints" in meta and (not isinstance(meta["hints"], list) or len(meta["hints"]) != 3):
        problems.append("hints must be a list of exactly three progressive hints")
    if meta.get("task", "classification") not in TASKS:
        problems.append(f"task must be one of {', '.join(TASKS)}")
    for name in ("pipeline.py", "config.yaml"):
        if not (folder / name).is_file():
            problems.append(f"the folder has no {name}")
    solution = folder / "solution"
    if not solution.is_dir() or not any(solution.iterdir()):
        problems.append("the folder has no solution/ with the reference fix")
    for key in ("symptoms", "seeds", "editable", "tags"):
        if key in meta and not (isinstance(meta[key], list) and meta[key]):
            problems.append(f"'{key}' must be a non-empty list")
    if isinstance(meta.get("editable"), list):
        problems += editable_problems(meta["editable"], folder)
    for s in meta.get("symptoms") or []:
        if not (isinstance(s, dict) and {"id", "text"} <= s.keys()):
            problems.append("each symptom needs an 'id' and a 'text'")
    verify = meta.get("verify")
    if verify is not None:
        problems += _criteria_problems(verify, meta.get("task", "classification"))
    return problems


def editable_problems(editable: list[Any] | tuple[Any, ...], folder: Path) -> list[str]:
    """Each editable entry must be the plain name of a regular file in the scenario folder.

    ``sandbox start`` copies these files into ``<home>/<id>/`` under the same names, so an
    entry such as ``../../x``, ``/x`` or ``sub/x`` (through a folder that may be a link)
    would copy outside the workspace or from outside the scenario. The harness only reads
    a top-level ``pipeline.py`` and ``config.yaml`` (and variants compare top-level names),
    so nothing needs a path here. A link is refused too: its target is not the scenario's.
    """
    problems = []
    for entry in editable:
        name = f"editable entry {entry!r}"
        if not isinstance(entry, str) or not FILE_NAME.fullmatch(entry):
            problems.append(f"{name} must be a plain file name in the scenario folder "
                            "(letters, digits, '.', '_', '-'; no folder, no '..', no "
                            "absolute path), since it is copied into the workspace as named")
        elif entry in WORKSPACE_FILES:
            problems.append(f"{name} is a file the workspace writes itself")
        elif (folder / entry).is_symlink():
            problems.append(f"{name} is a symbolic link in the scenario folder; ship the "
                            "file itself")
        elif not is_regular(folder / entry):
            problems.append(f"{name} is not a file in the scenario folder, so there is "
                            "nothing to copy into the workspace")
    repeated = sorted({e for e in editable if isinstance(e, str) and editable.count(e) > 1})
    problems += [f"editable entry {e!r} is listed more than once" for e in repeated]
    return problems


def _criteria_problems(verify: Any, task: str) -> list[str]:
    if not isinstance(verify, dict):
        return ["'verify' must be a mapping"]
    known = set(Criteria.__dataclass_fields__)
    problems = [f"verify.{k} is not a known criterion (known: {', '.join(sorted(known))})"
                for k in verify if k not in known]
    for k in ("train_loss_max", "val_tolerance", "max_steps", "max_samples"):
        if k not in verify:
            problems.append(f"verify.{k} is required")
    return problems + _metric_problems(verify, task)


def _metric_problems(verify: dict[str, Any], task: str) -> list[str]:
    """The metric must score the task's outputs, with its threshold on its own side."""
    name = verify.get("metric", DEFAULT_METRIC.get(task, "accuracy"))
    metric = METRICS.get(name)
    if metric is None:
        return [f"verify.metric '{name}' is not a known metric (known: {', '.join(METRICS)})"]
    if metric.task != task:
        return [f"verify.metric '{name}' scores {metric.task}, but the task is {task}"]
    wanted, other = (("test_metric_min", "test_metric_max") if metric.higher_is_better
                     else ("test_metric_max", "test_metric_min"))
    side = "higher" if metric.higher_is_better else "lower"
    problems = [] if wanted in verify else [f"verify.{wanted} is required: {side} "
                                            f"{metric.label} is better"]
    if other in verify:
        problems.append(f"verify.{other} does not fit {metric.label}; use verify.{wanted}")
    return problems


def _build(meta: dict[str, Any], folder: Path) -> Scenario:
    return Scenario(
        id=meta["id"], title=meta["title"], difficulty=meta["difficulty"],
        tags=tuple(meta["tags"]), brief=meta["brief"].strip(),
        symptoms=tuple(meta["symptoms"]), hints=tuple(meta["hints"]),
        explanation=meta["explanation"].strip(), editable=tuple(meta["editable"]),
        criteria=Criteria(**{"metric": DEFAULT_METRIC[meta.get("task", "classification")],
                             **meta["verify"]}), seeds=tuple(meta["seeds"]), path=folder,
        task=meta.get("task", "classification"), locked=tuple(meta.get("locked", ())),
        bounds={k: tuple(v) for k, v in (meta.get("bounds") or {}).items()},
        choices={k: tuple(v) for k, v in (meta.get("choices") or {}).items()},
    )


def discover(extra_dirs: list[Path] | tuple[Path, ...] = ()) -> dict[str, Scenario]:
    """All scenarios, bundled first, then the user's folders; ids must be unique."""
    found: dict[str, Scenario] = {}
    for root in (bundled_dir(), *map(Path, extra_dirs)):
        if not root.is_dir():
            raise ScenarioNotFound(f"--scenarios {root}: no such folder.")
        folders = [root] if (root / METADATA_FILE).is_file() else sorted(root.iterdir())
        for folder in folders:
            if not (folder / METADATA_FILE).is_file():
                continue
            scenario = load_scenario(folder)
            if scenario.id in found:
                raise ScenarioFormatError(
                    f"scenario id '{scenario.id}' is defined twice: in "
                    f"{found[scenario.id].path} and in {scenario.path}.")
            found[scenario.id] = scenario
    return found


def get(scenario_id: str, extra_dirs: list[Path] | tuple[Path, ...] = ()) -> Scenario:
    """Look a scenario up by id; an unknown id gets a did-you-mean."""
    catalog = discover(extra_dirs)
    if scenario_id in catalog:
        return catalog[scenario_id]
    unversioned = [s for s in catalog if s.rsplit("-v", 1)[0] == scenario_id]
    if len(unversioned) == 1:
        return catalog[unversioned[0]]
    close = _closest(scenario_id, list(catalog))
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise ScenarioNotFound(
        f"No scenario {quote(scenario_id)}.{hint} `sandbox list` shows the {len(catalog)} "
        "there are.")


def _closest(name: str, ids: list[str]) -> list[str]:
    """Up to three ids like ``name``, only those nearly as close as the closest (with 25
    scenarios, a loose cutoff suggests ids that share no more than ``-v1``).
    """
    scored = sorted(((difflib.SequenceMatcher(None, name, i).ratio(), i) for i in ids),
                    reverse=True)
    if not scored or scored[0][0] < 0.5:
        return []
    return [i for r, i in scored[:3] if r >= scored[0][0] - 0.1]
