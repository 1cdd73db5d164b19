"""Decoys and alternatives as part of the scenario format: their checks, and matching a
candidate's fix to the known ones.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sandbox import catalog, checker, variants
from sandbox.harness import candidate

from .conftest import FIXTURE_SCENARIOS


def problems(folder: Path) -> list[str]:
    return variants.problems(catalog.load_scenario(folder))


def test_the_fixture_has_well_formed_variants(tiny):
    assert problems(tiny) == []
    scenario = catalog.load_scenario(tiny)
    decoy = next(v for v in variants.variants(scenario, "decoy") if v.name == "longer-in-code")
    assert decoy.fails == ("budget",) and decoy.reason.startswith("train.epochs is locked")


def test_too_few_decoys_is_a_problem(tiny):
    shutil.rmtree(tiny / "decoys" / "still-too-small")
    assert problems(tiny) == ["the scenario has 2 decoys in decoys/ (at least 3: plausible "
                              "fixes that leave the bug in place, each of which must fail)"]


@pytest.mark.parametrize("about, problem", [
    (None, "decoy 'still-too-small' has no about.yaml with its summary and reason"),
    ("summary: a: b\n", "decoy 'still-too-small': "),  # then the file's path: not valid YAML
    ("summary: x\nreason: y\n", "decoy 'still-too-small': about.yaml needs 'fails', the "
                                "criteria it must fail"),
    ("summary: x\nreason: y\nfails: [speed]\n", "decoy 'still-too-small': 'fails' names "
                                                "'speed', which is not a criterion"),
])
def test_a_decoys_metadata_is_checked(tiny, about, problem):
    path = tiny / "decoys" / "still-too-small" / "about.yaml"
    path.unlink()
    if about is not None:
        path.write_text(about)
    [found] = problems(tiny)
    assert found.startswith(problem)
    if about == "summary: a: b\n":
        assert found.endswith(f"{path} is not valid YAML: mapping values are not allowed "
                              "here at line 1, column 11.")


def test_a_variant_must_change_an_editable_file(tiny):
    folder = tiny / "alternatives" / "adam"
    shutil.copy(tiny / "pipeline.py", folder / "pipeline.py")
    shutil.copy(tiny / "config.yaml", folder / "config.yaml")
    (folder / "notes.txt").write_text("x")
    assert problems(tiny) == [
        "alternative 'adam' holds notes.txt, which the scenario does not let users edit"]
    (folder / "notes.txt").unlink()
    assert problems(tiny) == ["alternative 'adam' is identical to the shipped files"]


def test_a_decoy_the_config_rules_refuse_is_a_problem(tiny):
    config = tiny / "decoys" / "still-too-small" / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 3", "epochs: 30"))
    [found] = checker.check_variants_run(catalog.load_scenario(tiny))
    assert found.startswith("decoy 'still-too-small' is refused: The config was refused")


@pytest.mark.parametrize("overrides, expected", [
    (["optimizer.lr=0.2"], ("solution", "reference")),  # near the fix's 0.3
    (["optimizer.lr=0.003"], ("decoy", "still-too-small")),
    ([], None),
])
def test_a_fix_matches_the_known_fix_it_resembles(overrides, expected):
    scenario = catalog.get("tiny-v1", [FIXTURE_SCENARIOS])
    matched = variants.match(scenario, candidate.make(scenario, overrides=overrides))
    assert (matched and (matched["kind"], matched["name"])) == expected


def test_code_changes_are_told_apart_by_the_function_they_are_in():
    scenario = catalog.get("batchnorm-eval-v2")
    solution = variants.changes(scenario, scenario.solution_dir / "pipeline.py", {}).code
    other = scenario.decoys_dir / "eval-outside-predict" / "pipeline.py"
    assert ("+", "predict: model.eval()") in solution
    assert ("+", "train: model.eval()") in variants.changes(scenario, other, {}).code


def test_a_decoy_that_passes_or_fails_for_another_reason_is_reported():
    scenario = catalog.get("tiny-v1", [FIXTURE_SCENARIOS])
    decoy = next(v for v in variants.variants(scenario, "decoy") if v.name == "longer-in-code")

    class Seed:
        def __init__(self, seed, failed):
            self.seed, self.passed = seed, not failed
            self.checks = [type("C", (), {"name": n, "passed": False})() for n in failed]

    outcome = type("O", (), {"seeds": [Seed(0, []), Seed(1, ["train loss"])]})()
    assert checker.check_decoy_fails(decoy, outcome) == [
        "decoy 'longer-in-code' passes on seed 0; it must fail (train.epochs is locked; the "
        "budget counts the samples)",
        "decoy 'longer-in-code' does not fail budget on seed 1 (it fails: train loss)"]
