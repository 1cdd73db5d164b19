"""Workspaces, the clock rules, picking scenarios and the text chart (quiz: test_quiz.py)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from sandbox import drills
from sandbox.catalog import get
from sandbox.errors import ConfigError, SandboxError
from sandbox.history import History
from sandbox.home import TICKET, Workspace
from sandbox.termchart import line_chart

from .conftest import CATALOG, FIXTURE_SCENARIOS

TINY = get("tiny-v1", [FIXTURE_SCENARIOS])


@pytest.fixture
def log(tmp_path: Path) -> History:
    return History.in_home(tmp_path)


def test_start_copies_the_editable_files_and_writes_the_ticket(tmp_path, log):
    started = drills.start(TINY, tmp_path, log)
    root = started.workspace.root
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [*TINY.editable, TICKET, ".sandbox.json"])
    assert (root / "config.yaml").read_text() == TINY.config_path.read_text()
    ticket = (root / TICKET).read_text()
    assert TINY.brief in ticket and f"sandbox verify {TINY.id}" in ticket
    assert started.attempt.status == "open" and not started.resumed


def test_starting_again_keeps_edits_and_the_clock(tmp_path, log):
    first = drills.start(TINY, tmp_path, log)
    (first.workspace.root / "config.yaml").write_text("my edits\n")
    again = drills.start(TINY, tmp_path, log)
    assert again.resumed and again.attempt.id == first.attempt.id
    assert (first.workspace.root / "config.yaml").read_text() == "my edits\n"
    assert again.workspace.edited() == ["config.yaml"]


def test_reset_backs_up_what_it_replaces(tmp_path, log):
    first = drills.start(TINY, tmp_path, log)
    (first.workspace.root / "pipeline.py").write_text("# my edits\n")
    reset = drills.start(TINY, tmp_path, log, reset=True)
    assert reset.backup is not None and reset.attempt.id != first.attempt.id
    assert (reset.backup / "pipeline.py").read_text() == "# my edits\n"
    assert (reset.workspace.root / "pipeline.py").read_text() == TINY.pipeline_path.read_text()
    assert log.attempt(first.attempt.id).status == "abandoned"


def test_a_workspace_is_never_created_over_an_existing_one(tmp_path):
    ws = Workspace(TINY, tmp_path)
    ws.create()
    (ws.root / "config.yaml").write_text("mine\n")
    with pytest.raises(SandboxError, match="never overwritten"):
        ws.create()
    assert (ws.root / "config.yaml").read_text() == "mine\n"


def test_a_hint_before_start_starts_the_clock_and_start_keeps_it(tmp_path, log):
    attempt, used, new = drills.take_hint(TINY, log)
    assert (used, new) == (1, True)
    started = drills.start(TINY, tmp_path, log)
    assert started.attempt.id == attempt.id and started.attempt.hints == 1


def test_the_workspace_candidate_runs_the_users_files(tmp_path, log):
    ws = drills.start(TINY, tmp_path, log).workspace
    chosen = ws.candidate()
    assert chosen.label == "workspace" and chosen.pipeline == ws.root / "pipeline.py"
    (ws.root / "config.yaml").write_text(
        TINY.config_path.read_text().replace("epochs:", "epochs: 99 #"))
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        ws.candidate()


def test_a_verification_without_an_open_attempt_solves_nothing(tmp_path, log):
    attempt = drills.start(TINY, tmp_path, log).attempt
    log.close_attempt(attempt.id, "skipped")
    recorded = drills.record(TINY, log, passed=True, failed=[], wall_time_s=1.0, run_group="g")
    assert not recorded.solved_now and log.attempt(attempt.id).status == "skipped"
    assert len(log.verifications()) == 1


def test_pick_puts_unsolved_scenarios_first_and_filters(log):
    scenarios = list(CATALOG.values())
    solved = log.open_attempt("exploding-lr-v2")
    log.record_verification(solved.id, "exploding-lr-v2", passed=True)
    for seed in range(10):
        picked = drills.pick(scenarios, log, count=len(scenarios), rng=random.Random(seed))
        assert picked[-1].id == "exploding-lr-v2"  # every one but the tutorial
        assert {s.id for s in picked} == {s.id for s in drills.counted(scenarios)}
        assert all(drills.TUTORIAL not in s.tags for s in picked)
        assert "exploding-lr-v2" not in [s.id for s in drills.pick(
            scenarios, log, count=4, rng=random.Random(seed))]
    assert [s.id for s in drills.pick(scenarios, log, count=3, tag="validation")] == [
        "data-leakage-v2"]
    assert all(s.difficulty == 2 for s in drills.pick(scenarios, log, count=9, difficulty=2))
    with pytest.raises(ConfigError, match=r"Tags in the catalog: .*tabular"):
        drills.pick(scenarios, log, count=1, tag="no-such-tag")


def test_the_solution_diff_shows_each_catalog_fix():
    for scenario in CATALOG.values():
        diff = drills.solution_diff(scenario)
        assert diff.startswith("--- shipped/") and "+++ solution/" in diff
        assert any(line.startswith("+") and not line.startswith("+++")
                   for line in diff.splitlines())


def test_the_text_chart_draws_a_falling_loss_and_marks_non_finite_values():
    falling = [(s, 2.3 * math.exp(-s / 40)) for s in range(200)]
    chart = line_chart(falling, title="loss/train", width=40, height=8).splitlines()
    rows = chart[1:9]
    assert "*" in rows[0].split("|")[1][:3] and "*" in rows[-1].split("|")[1][-3:]
    diverging = [(s, 2.0 * 1.5 ** s) for s in range(30)] + [(30, math.nan)]
    text = line_chart(diverging, title="loss/train")
    assert "x = non-finite (first at step 30)" in text
    assert line_chart([], title="loss/train") == "loss/train: nothing was logged"


def test_a_seeded_pick_without_history_is_the_same_for_everyone():
    scenarios = list(CATALOG.values())
    runs = [[s.id for s in drills.pick(scenarios, None, count=len(scenarios),
                                       rng=random.Random(7))] for _ in range(2)]
    assert runs[0] == runs[1]
    assert sorted(runs[0]) == sorted(s.id for s in drills.counted(scenarios))  # no tutorial
