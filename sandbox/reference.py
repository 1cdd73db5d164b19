"""``reference.json``: what the shipped pipeline and the reference fix measured, per scenario.

Verification compares every candidate against it: the capacity lock holds the returned
model to the shipped model's size and weight shapes, and the integrity flags compare a
candidate's figures with the reference's (a test metric above what the reference
reaches, far fewer gradient samples, training identical to the reference's).

``sandbox check DIR --write-reference`` writes it from real runs; ``sandbox check``
reruns them and reports a stale file. It is keyed by a fingerprint of the files whose
change would change it, so an edited scenario cannot be judged against old figures.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .catalog import Scenario

FILE = "reference.json"
TEST_METRIC_SLACK = 0.03  # the hidden sample changes with the salt; above this is odd


@dataclass(frozen=True)
class Reference:
    fingerprint: str
    shipped_model: dict[str, Any] | None  # {"params", "shapes"} of the model the shipped
    # pipeline builds (returned, or seen in training when the run diverged)
    seeds: dict[str, dict[str, Any]] = field(default_factory=dict)  # the solution, per seed:
    # samples, steps, test_metric, loss_digest (and the shipped run's, shipped_loss_digest)
    torch: str | None = None

    def seed(self, seed: int) -> dict[str, Any] | None:
        return self.seeds.get(str(seed))


def fingerprint(scenario: Scenario) -> str:
    """The shipped pipeline and config and the solution's files, digested together."""
    digest = hashlib.sha256()
    files = [scenario.pipeline_path, scenario.config_path,
             *sorted(p for p in scenario.solution_dir.rglob("*") if p.is_file()
                     and "__pycache__" not in p.parts)]
    for path in files:
        digest.update(path.relative_to(scenario.path).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def load(scenario: Scenario) -> tuple[Reference | None, str | None]:
    """The scenario's reference, or None and why it cannot be used."""
    path = scenario.path / FILE
    if not path.is_file():
        return None, f"the scenario has no {FILE} (`sandbox check {scenario.path} " \
                     "--write-reference` makes it)"
    try:
        raw = json.loads(path.read_text())
        reference = Reference(raw["fingerprint"], raw["shipped_model"], raw.get("seeds", {}),
                              raw.get("torch"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{path} cannot be read ({exc})"
    if reference.fingerprint != fingerprint(scenario):
        return None, (f"{FILE} is stale: the scenario's files changed since it was written "
                      f"(`sandbox check {scenario.path} --write-reference` renews it)")
    return reference, None


def build(scenario: Scenario, shipped: list[dict[str, Any]],
          solution: list[dict[str, Any]]) -> Reference:
    """A reference from real runs of the shipped pipeline and of the solution."""
    from .criteria import samples
    model = next((r["model"] for r in shipped if r.get("model")), None)
    shipped_curves = {r["seed"]: r.get("loss_digest") for r in shipped}
    seeds = {str(r["seed"]): {"samples": samples(r), "steps": r.get("steps"),
                              "test_metric": r.get("test/metric"),
                              "loss_digest": r.get("loss_digest"),
                              "shipped_loss_digest": shipped_curves.get(r["seed"])}
             for r in solution}
    torch = next((r.get("torch") for r in solution if r.get("torch")), None)
    shape = None if model is None else {"params": model["params"], "shapes": model["shapes"]}
    return Reference(fingerprint(scenario), shape, seeds, torch)


def save(scenario: Scenario, reference: Reference) -> Path:
    path = scenario.path / FILE
    text = json.dumps(asdict(reference), indent=1)
    text = re.sub(r"\[\s+([-\d,\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]",
                  text)  # shapes on one line each
    path.write_text(text + "\n")
    return path


def differences(saved: Reference, fresh: Reference) -> list[str]:
    """Where a fresh reference disagrees with the saved one (the model and the budget must
    match exactly; test metrics move with the hidden sample and are not compared).
    """
    problems = []
    if saved.shipped_model != fresh.shipped_model:
        problems.append("the shipped model's size differs from reference.json's")
    for seed, now in fresh.seeds.items():
        then = saved.seeds.get(seed, {})
        for key in ("samples", "steps"):
            if then.get(key) != now.get(key):
                problems.append(f"seed {seed}: the solution took {now.get(key)} {key}, "
                                f"reference.json says {then.get(key)}")
    return problems
