"""What gets run: the shipped pipeline, the reference solution, a patched config or a
user's own ``pipeline.py``, each with optional ``--set`` overrides.

Everything a candidate brings is checked here, before any process starts: the config
against the scenario's rules, the pipeline file for existence, syntax and a ``train``
function. Nothing here imports torch.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _yaml, config
from ..catalog import Scenario
from ..errors import CandidateError, ConfigError


@dataclass(frozen=True)
class Candidate:
    """A pipeline file and the resolved config it runs with.

    ``sources`` names the files the candidate brings (its pipeline, and its config file
    when it has one), for the provenance that ``--json`` reports; ``overrides`` are its
    ``--set`` changes.
    """

    label: str
    pipeline: Path
    config: dict[str, Any]
    description: str
    sources: tuple[Path, ...] = ()
    overrides: tuple[str, ...] = ()

    @property
    def is_shipped(self) -> bool:
        return self.label == "shipped"


def make(scenario: Scenario, *, solution: bool = False, config_file: Path | None = None,
         pipeline_file: Path | None = None, overrides: Iterable[str] = (),
         variant: Path | None = None) -> Candidate:
    """Build and validate a candidate; raises ConfigError (exit 2) or CandidateError (exit 1).

    ``solution`` runs the reference fix; ``variant`` a folder shaped like it (a decoy or
    an alternative): the files it holds replace the shipped ones.
    """
    overrides = list(overrides)
    pipeline, base, label, what = scenario.pipeline_path, None, "shipped", "the shipped pipeline"
    sources: list[Path] = []
    folder = scenario.solution_dir if solution else variant
    if folder is not None:
        label, what = ("solution", "the reference solution") if solution else (
            f"{folder.parent.name.rstrip('s')}-{folder.name}",
            f"{folder.parent.name.rstrip('s')} '{folder.name}'")
        if (folder / "pipeline.py").is_file():
            pipeline = folder / "pipeline.py"
        if (folder / "config.yaml").is_file():
            base = _whole_config(scenario, folder / "config.yaml")
            sources.append(folder / "config.yaml")
    if pipeline_file is not None:
        pipeline = Path(pipeline_file).resolve()
        label, what = "pipeline", f"pipeline {pipeline_file}"
        if not pipeline.is_file():
            raise ConfigError(f"--pipeline {pipeline_file}: no such file.")
    patch = config.read_patch(config_file) if config_file is not None else None
    if config_file is not None:
        label, what = "config", f"the shipped pipeline with config {config_file}"
        sources.append(Path(config_file))
    elif pipeline_file is not None:
        what += " with the shipped config.yaml"
    resolved = config.resolve(scenario, patch, overrides, base=base,
                              source=f"{config_file}:" if config_file is not None else "",
                              base_source=f"{sources[0]}:" if base is not None else "")
    if overrides:
        label += "+set"
        what += " with " + " ".join(f"--set {o}" for o in overrides)
    check_pipeline_file(pipeline)
    return Candidate(label, pipeline, resolved, what, (pipeline, *sources), tuple(overrides))


def _whole_config(scenario: Scenario, path: Path) -> dict:
    """A solution's or variant's config.yaml replaces the shipped one, so it must hold every
    key the shipped one does (a file of only the changed keys belongs in ``--config``).
    """
    loaded = _yaml.load_file(path)
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must be a mapping of keys like the shipped config.yaml.")
    missing = sorted(set(config.flatten(_yaml.load_file(scenario.config_path)))
                     - set(config.flatten(loaded)))
    if missing:
        shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
        raise ConfigError(f"{path} replaces the shipped config.yaml but lacks {shown}; copy "
                          "the whole shipped file and change what the fix changes.")
    return loaded


def check_pipeline_file(path: Path) -> None:
    """A syntax error or a missing ``train`` is reported before any process is started.

    The source is parsed as bytes, as Python itself loads it: a coding declaration is
    honoured, and text that is not valid in its encoding (or holds NUL bytes) is the same
    failure as a syntax error.
    """
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError) as exc:
        line = f":{exc.lineno}" if getattr(exc, "lineno", None) else ""
        reason = getattr(exc, "msg", None) or str(exc)
        raise CandidateError(
            f"The candidate {path.name} cannot run: {type(exc).__name__} at {path.name}{line}: "
            f"{reason}. Nothing was run; fix it and verify again.") from None
    names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    if "train" not in names:
        raise CandidateError(
            f"The candidate {path.name} defines no top-level train(cfg, data, run) function, "
            "which is what the harness calls. Nothing was run.")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fingerprint(scenario: Scenario) -> str:
    """Changes whenever the shipped pipeline, config or metadata change, so a cached
    broken-run baseline is never compared against a different scenario.
    """
    digest = hashlib.sha256()
    for path in (scenario.pipeline_path, scenario.config_path, scenario.path / "scenario.yaml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
