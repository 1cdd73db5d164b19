"""The catalog's invariants, proved by really running every scenario on every seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import checker
from sandbox.diagnosis import diagnose
from sandbox.telemetry import read_scalars

from .conftest import CATALOG

IDS = sorted(CATALOG)
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("scenario_id", IDS)
def test_shipped_pipeline_fails_on_every_seed(scenario_id, verified):
    outcome = verified(scenario_id, solution=False)
    assert [s.seed for s in outcome.seeds] == list(CATALOG[scenario_id].seeds)
    assert not any(s.passed for s in outcome.seeds), outcome.to_json()


@pytest.mark.parametrize("scenario_id", IDS)
def test_reference_solution_passes_on_every_seed(scenario_id, verified):
    outcome = verified(scenario_id, solution=True)
    assert all(s.passed for s in outcome.seeds), checker.check_solution_passes(outcome)


@pytest.mark.parametrize("scenario_id", IDS)
def test_the_diagnoser_names_the_documented_symptoms_in_every_broken_seed(scenario_id, verified):
    scenario = CATALOG[scenario_id]
    outcome = verified(scenario_id, solution=False)
    for seed in outcome.seeds:
        named = {f.symptom for f in diagnose(seed.run_dir)[0].findings}  # from the files
        assert set(scenario.symptom_ids) <= named, (seed.seed, named)
        assert {f.symptom for f in seed.findings} == named  # what verify shows


@pytest.mark.parametrize("scenario_id", IDS)
def test_the_diagnoser_finds_nothing_in_the_fixed_runs(scenario_id, verified):
    outcome = verified(scenario_id, solution=True)
    for seed in outcome.seeds:
        assert diagnose(seed.run_dir)[0].findings == [], seed.seed
        assert seed.findings == ()


@pytest.mark.parametrize("scenario_id", IDS)
def test_solution_is_a_focused_fix(scenario_id):
    changed = checker.solution_diff_lines(CATALOG[scenario_id])
    assert 0 < changed <= checker.MAX_DIFF_LINES


@pytest.mark.parametrize("scenario_id", IDS)
def test_static_checks_are_clean(scenario_id):
    assert checker.static_problems(CATALOG[scenario_id]) == []


@pytest.mark.parametrize("scenario_id", IDS)
def test_event_files_hold_the_expected_tags(scenario_id, verified):
    outcome = verified(scenario_id, solution=True)
    for seed in outcome.seeds:
        series = read_scalars(Path(seed.run_dir))  # tensorboard's own reader
        expected = {"loss/train", "loss/val", "metric/val", "lr", "grad_norm/global",
                    "test/metric", "serve/batch_dependence"}
        assert expected <= set(series), expected - set(series)
        layers = [t for t in series if t.startswith("grad_norm/") and t != "grad_norm/global"]
        assert len(layers) >= 2 and any(t.startswith("update_ratio/") for t in series)
        assert len(series["loss/train"]) == outcome.results[0]["train_loss_points"]
    assert (Path(outcome.png).read_bytes()[:4]) == b"\x89PNG"
