"""The checker, fed broken scenario folders: each problem gets its exact message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sandbox import catalog, checker


def problems(folder: Path) -> list[str]:
    return checker.static_problems(catalog.load_scenario(folder))


def test_the_fixture_is_clean(tiny):
    assert problems(tiny) == []


def test_a_comment_pointing_at_the_bug_is_flagged(tiny):
    config = tiny / "config.yaml"
    config.write_text(config.read_text().replace("lr: 0.001", "lr: 0.001  # TODO too small"))
    assert problems(tiny) == ["config.yaml:5 says 'TODO', which points the user at the bug"]


def test_a_solution_identical_to_the_shipped_files_is_flagged(tiny):
    shutil.copy(tiny / "config.yaml", tiny / "solution" / "config.yaml")
    assert problems(tiny) == ["the solution's files are identical to the shipped ones"]


def test_a_rewrite_is_not_a_focused_fix(tiny):
    lines = "".join(f"x{i} = {i}\n" for i in range(30))
    (tiny / "solution" / "pipeline.py").write_text((tiny / "pipeline.py").read_text() + lines)
    assert problems(tiny) == ["the solution changes 32 lines of the shipped files (at most 20): "
                              "a reference fix should be a focused change"]


def test_a_solution_that_changes_a_locked_key_is_refused(tiny):
    solution = tiny / "solution" / "config.yaml"
    solution.write_text(solution.read_text().replace("epochs: 3", "epochs: 30"))
    [problem] = problems(tiny)
    assert problem.startswith("the solution is refused: The config was refused")
    assert "train.epochs: locked by the scenario" in problem


def test_a_variant_config_that_holds_only_the_changed_keys_is_refused_by_name(tiny):
    """A variant's config.yaml replaces the shipped one: a partial file would otherwise
    reach the seeds without its data section."""
    partial = tiny / "decoys" / "still-too-small" / "config.yaml"
    partial.write_text("optimizer:\n  lr: 0.005\n")
    [problem] = problems(tiny)
    assert problem.startswith("decoy 'still-too-small' is refused:")
    assert "lacks data.name, data.test_fraction, train.epochs" in problem


def test_locks_must_name_real_keys(tiny):
    meta = tiny / "scenario.yaml"
    meta.write_text(meta.read_text().replace("locked: [data, train.epochs]",
                                             "locked: [data, train.epoch]"))
    assert problems(tiny) == ["locked key 'train.epoch' is not in config.yaml"]


@pytest.mark.slow
def test_check_runs_the_scenario_and_reports_a_solution_that_fails_and_is_unhealthy(tiny, tmp_path):
    solution = tiny / "solution" / "config.yaml"
    solution.write_text(solution.read_text().replace("lr: 0.3", "lr: 0.002"))
    report = checker.check_scenario(tiny, logdir=tmp_path / "runs", device="cpu")
    assert not report.ok
    assert any(p.startswith("the solution fails on seed 0: train loss") for p in report.problems)
    assert report.broken is not None and not any(s.passed for s in report.broken.seeds)
    assert any(p.startswith("the diagnoser names 'not-learning' in the reference solution")
               for p in report.problems)
