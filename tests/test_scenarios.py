"""The catalog's invariants, proved by really running every scenario on every seed: the
shipped pipeline and every decoy fail, the solution and every alternative pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import checker, reference, variants
from sandbox.criteria import REVEALING
from sandbox.diagnosis import diagnose
from sandbox.telemetry import read_scalars
from sandbox.verification import LOGGED_AS_ERROR

from .conftest import CATALOG, ROOT

IDS = sorted(s for s in CATALOG if CATALOG[s].path.parent == ROOT / "scenarios")
pytestmark = pytest.mark.slow
# One xdist worker per scenario (``--dist loadgroup``): each scenario is checked once per
# session, by the worker that runs all of its tests, instead of once on every worker.
SCENARIOS = [pytest.param(s, marks=pytest.mark.xdist_group(s)) for s in IDS]


def test_every_scenario_folder_is_in_the_catalog():
    folders = sorted(p.parent.name for p in (ROOT / "scenarios").rglob("scenario.yaml")
                     if p.parent.parent == ROOT / "scenarios")
    assert folders == IDS and len(IDS) >= 4


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_sandbox_check_finds_no_problem(scenario_id, checked):
    assert checked(scenario_id).problems == []


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_shipped_pipeline_fails_on_every_seed(scenario_id, checked):
    outcome = checked(scenario_id).broken
    assert [s.seed for s in outcome.seeds] == list(CATALOG[scenario_id].seeds)
    assert not any(s.passed for s in outcome.seeds), outcome.to_json()


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_reference_solution_passes_on_every_seed(scenario_id, checked):
    outcome = checked(scenario_id).solution
    assert all(s.passed for s in outcome.seeds), checker.check_solution_passes(outcome)


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_each_scenario_has_four_decoys_and_two_alternatives(scenario_id):
    scenario = CATALOG[scenario_id]
    assert len(variants.variants(scenario, "decoy")) >= 4
    assert len(variants.variants(scenario, "alternative")) >= 2


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_every_decoy_fails_every_seed_on_the_criteria_it_names(scenario_id, checked):
    report = checked(scenario_id)
    decoys = variants.variants(CATALOG[scenario_id], "decoy")
    assert sorted(report.decoys) == [d.name for d in decoys]
    for decoy in decoys:
        for seed in report.decoys[decoy.name].seeds:
            failed = {c.name for c in seed.checks if not c.passed}
            assert set(decoy.fails) <= failed, (decoy.name, seed.seed, failed)


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_every_alternative_passes_every_seed(scenario_id, checked):
    report = checked(scenario_id)
    alternatives = variants.variants(CATALOG[scenario_id], "alternative")
    assert sorted(report.alternatives) == [a.name for a in alternatives]
    for name, outcome in report.alternatives.items():
        assert outcome.passed, (name, outcome.failed_checks)


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_a_pass_names_the_fix_it_matches(scenario_id, checked):
    report = checked(scenario_id)
    assert report.solution.matched["kind"] == "solution"
    for name, outcome in report.alternatives.items():
        assert outcome.matched == {**outcome.matched, "kind": "alternative", "name": name}


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_reference_json_agrees_with_fresh_runs(scenario_id, checked):
    saved, why = reference.load(CATALOG[scenario_id])
    assert saved is not None, why
    assert reference.differences(saved, checked(scenario_id).reference) == []


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_the_diagnoser_names_the_documented_symptoms_in_every_broken_seed(scenario_id, checked):
    scenario = CATALOG[scenario_id]
    for seed in checked(scenario_id).broken.seeds:
        named = {f.symptom for f in diagnose(seed.run_dir)[0].findings}  # from the files
        assert set(scenario.symptom_ids) <= named, (seed.seed, named)
        assert {f.symptom for f in seed.findings} == named  # what verify shows


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_the_diagnoser_finds_nothing_in_the_fixed_runs(scenario_id, checked):
    for seed in checked(scenario_id).solution.seeds:
        assert diagnose(seed.run_dir)[0].findings == [], seed.seed
        assert seed.findings == ()


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_solution_is_a_focused_fix(scenario_id):
    changed = checker.solution_diff_lines(CATALOG[scenario_id])
    assert 0 < changed <= checker.MAX_DIFF_LINES


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_static_checks_are_clean(scenario_id):
    assert checker.static_problems(CATALOG[scenario_id]) == []


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_event_files_hold_the_expected_tags(scenario_id, checked):
    outcome = checked(scenario_id).solution
    for seed, result in zip(outcome.seeds, outcome.results, strict=True):
        series = read_scalars(Path(seed.run_dir))  # tensorboard's own reader
        metric = CATALOG[scenario_id].criteria.metric
        test_tag = f"test/metric_{metric}" if metric in LOGGED_AS_ERROR else "test/metric"
        expected = {"loss/train", "lr", "grad_norm/global", test_tag,  # not all log loss/val
                    "serve/batch_dependence", "serve/output_shift", "serve/repeat_change"}
        assert expected <= set(series), expected - set(series)
        assert any(t.startswith("metric/val") for t in series), sorted(series)
        layers = [t for t in series if t.startswith("grad_norm/") and t != "grad_norm/global"]
        assert len(layers) >= 2 and any(t.startswith("update_ratio/") for t in series)
        assert len(series["loss/train"]) == result["train_loss_points"]
        assert series[test_tag][-1][1] == pytest.approx(result["test/metric"])
    assert (Path(outcome.png).read_bytes()[:4]) == b"\x89PNG"


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_the_shipped_verdict_does_not_give_the_root_cause_away(scenario_id, checked):
    assert not set(checked(scenario_id).broken.shown_checks) & REVEALING


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_a_refused_decoy_is_always_told_what_failed(scenario_id, checked):
    for name, outcome in checked(scenario_id).decoys.items():
        assert outcome.shown_failed, name
