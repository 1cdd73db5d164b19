"""The PNG drawn after each verification: seeds told apart, every criterion's threshold,
the evidence the symptoms turn on, and a run that diverged saying so where it is missing.

The figures are drawn from real verifications of the fixture scenario (its shipped
pipeline, its solution, and a pipeline whose loss turns NaN), and inspected as matplotlib
Figures before they become PNGs.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from matplotlib.colors import to_rgb
from matplotlib.image import imread
from matplotlib.text import Text

from sandbox import catalog, plots
from sandbox.criteria import REVEALING
from sandbox.diagnosis.advice import SYMPTOMS
from sandbox.harness import candidate
from sandbox.verification import strict, verify, verify_many

from .conftest import CATALOG, FIXTURE_SCENARIOS, FIXTURES


def trains(test):
    """Slow: these share one module's real runs (on one xdist worker)."""
    return pytest.mark.slow(pytest.mark.xdist_group("plots")(test))


# -- without training -------------------------------------------------------------------


def test_each_symptom_has_its_evidence():
    """Every symptom the diagnoser knows, and every one a scenario declares, picks its own
    panels rather than the fallback.
    """
    assert set(SYMPTOMS) <= set(plots.SYMPTOM_EVIDENCE)
    declared = {s for sid in CATALOG for s in catalog.get(sid).symptom_ids}
    assert declared <= set(plots.SYMPTOM_EVIDENCE)
    views = set(plots.EVIDENCE_TITLES)
    assert {v for vs in plots.SYMPTOM_EVIDENCE.values() for v in vs} <= views
    assert set(plots.FALLBACK_EVIDENCE) | set(plots.NEUTRAL_EVIDENCE) <= views


@pytest.mark.parametrize(("symptoms", "expected"), [
    (("diverging", "large-updates"), ["grad_global", "update_ratio", "lr"]),
    (("not-learning", "vanishing-gradients"), ["grad_norm", "update_ratio"]),
    (("eval-batch-dependence", "optimistic-validation"), ["serving", "validation"]),
    (("lr-collapse", "not-learning", "small-updates"), ["lr", "grad_norm", "update_ratio"]),
    (("dead-units", "not-learning"), ["dead_units", "grad_norm", "update_ratio"]),
    (("optimistic-validation",), ["validation", "grad_norm"]),  # topped up to two
    (("no-such-symptom",), ["grad_norm", "update_ratio"]),  # the fallback
    ((), ["grad_norm", "update_ratio"]),
])
def test_the_evidence_follows_the_symptom_ids(symptoms, expected):
    assert plots.evidence_for(symptoms) == expected


@pytest.mark.parametrize(("shown", "expected"), [
    (["completes", "test accuracy"], ["validation", "grad_norm"]),  # the check still hidden
    (["completes", "test accuracy", "batch dependence"], ["serving", "validation"]),
    (None, ["serving", "validation"]),  # no verdict to hide anything from
])
def test_a_panel_of_a_hidden_criterion_waits_until_the_verdict_names_it(shown, expected):
    """The batchnorm scenario's first look must not show the one panel that names its bug."""
    symptoms = ("eval-batch-dependence", "optimistic-validation")
    assert plots.evidence_for(symptoms, shown) == expected


def test_every_withheld_panel_waits_for_a_criterion_the_terminal_withholds():
    from sandbox.criteria import NAMES, REVEALING
    for view, criteria in plots.EVIDENCE_REVEALS.items():
        assert view in plots.EVIDENCE_TITLES
        assert criteria <= REVEALING and criteria <= set(NAMES)


# -- from real runs ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Real verifications of tiny-v1: the shipped pipeline (every seed), then in one pool
    the solution (drawn, its broken baseline read back from the shipped run's record)
    and a pipeline whose loss turns NaN at step 5 on every seed.
    """
    logdir = tmp_path_factory.mktemp("plot-runs")
    scenario = catalog.get("tiny-v1", [FIXTURE_SCENARIOS])
    shipped = verify(scenario, candidate.make(scenario), device="cpu", logdir=logdir,
                     plot=False)
    nan_loss = candidate.make(scenario, pipeline_file=FIXTURES / "pipelines" / "nan_loss.py")
    solution, diverged = verify_many(
        scenario, [candidate.make(scenario, solution=True), nan_loss], device="cpu",
        logdir=logdir)
    return SimpleNamespace(scenario=scenario, shipped=shipped, solution=solution,
                           diverged=diverged, logdir=logdir)


def panel(fig, gid: str):
    found = [ax for ax in fig.axes if ax.get_gid() == gid]
    assert found, f"no panel {gid}: {[ax.get_gid() for ax in fig.axes]}"
    return found[0]


def words(ax) -> str:
    """Everything written on a panel: its legend, its own texts, its annotations."""
    legend = ax.get_legend()
    texts = [t.get_text() for t in ax.texts]
    if legend is not None:
        texts += [t.get_text() for t in legend.get_texts()]
    return "\n".join(texts).replace("\n", " ")


def lines(ax, gid_prefix: str):
    return [line for line in ax.lines if (line.get_gid() or "").startswith(gid_prefix)]


@trains
def test_the_png_written_by_verify_decodes_at_its_size(runs):
    for outcome in (runs.solution, runs.diverged):
        assert outcome.png is not None
        image = imread(outcome.png)
        width, height = plots.FIGSIZE[0] * plots.DPI, plots.FIGSIZE[1] * plots.DPI
        assert image.shape == (height, width, 4)
        assert image[..., :3].std() > 0.05  # drawn on, not a blank canvas


@trains
def test_every_outcome_threshold_is_drawn_where_it_belongs(runs):
    criteria = runs.scenario.criteria
    fig = plots.curves_figure(runs.scenario, runs.solution)
    loss, metric = panel(fig, "loss"), panel(fig, "metric")
    (train,) = lines(loss, "threshold:train loss")
    assert set(train.get_ydata()) == {criteria.train_loss_max}
    assert f"final train loss <= {criteria.train_loss_max:g}" in words(loss)
    (test,) = lines(metric, "threshold:test")
    assert set(test.get_ydata()) == {criteria.test_threshold}
    assert f"hidden test accuracy >= {criteria.test_threshold:g}" in words(metric)
    lo, hi = metric.get_ylim()
    assert lo < criteria.test_threshold < hi
    # the step budget: a vertical line on both step panels (the runs come near it)
    for ax in (loss, metric):
        (budget,) = lines(ax, "threshold:budget")
        assert set(budget.get_xdata()) == {criteria.max_steps}
        assert ax.get_xlim()[1] > criteria.max_steps
    assert f"step budget: {criteria.max_steps} optimizer steps" in words(loss)
    # every criterion the terminal shows, with what it requires, in the footer
    (footer,) = [t for t in fig.texts if t.get_gid() == "footer"]
    shown = runs.solution.shown_checks
    for check in runs.solution.seeds[0].checks:
        assert (f"{check.name} ({check.required})" in footer.get_text().replace("\n", " ")) \
            == (check.name in shown)


@trains
def test_the_validation_and_serving_thresholds_are_drawn_on_their_panels(runs):
    traces = plots.traces_of([("shipped", runs.shipped.results, True),
                              ("solution", runs.solution.results, False)])
    criteria = dataclasses.replace(runs.scenario.criteria, max_batch_dependence=1e-4)
    everything = {"honest validation", "batch dependence", "train loss", "test accuracy"}
    fig = plots.draw_figure(traces, criteria, "t", evidence=["validation", "serving"],
                            shown=everything)
    validation = panel(fig, "evidence:validation")
    (band,) = [c for c in validation.collections if c.get_gid() == "threshold:val tolerance"]
    half = {round(abs(y - x), 9) for x, y in band.get_paths()[0].vertices[:-1]}
    assert half == {criteria.val_tolerance}  # the band is the diagonal +- the tolerance
    assert f"within {criteria.val_tolerance:g}" in words(validation)
    serving = panel(fig, "evidence:serving")
    (limit,) = lines(serving, "threshold:batch dependence")
    assert set(limit.get_ydata()) == {1e-4}
    # a criterion that names the bug keeps its line off until the terminal shows it
    hidden = plots.draw_figure(traces, criteria, "t", evidence=["serving"],
                               shown=everything - REVEALING)
    assert not lines(panel(hidden, "evidence:serving"), "threshold:")


@trains
def test_seeds_are_drawn_apart_and_runs_in_colour_families(runs):
    fig = plots.curves_figure(runs.scenario, runs.solution)
    loss = panel(fig, "loss")
    drawn = {line.get_gid(): line for line in lines(loss, "trace:")}
    expected = {f"trace:shipped:{r['seed']}" for r in runs.solution.baseline} | \
        {f"trace:solution:{r['seed']}" for r in runs.solution.results}
    assert set(drawn) == expected and len(expected) >= 3
    styles = {(to_rgb(line.get_color()), str(line.get_linestyle())) for line in drawn.values()}
    assert len(styles) == len(drawn)  # no two seeds look the same
    solution = [line for gid, line in drawn.items() if ":solution:" in gid]
    assert len({line.get_linestyle() for line in solution}) == len(solution)
    for gid, line in drawn.items():
        red, _, blue = to_rgb(line.get_color())
        assert (red > blue) == (":shipped:" in gid)  # broken red, candidate blue
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [f"{run} seed {seed}" for run, seed in
                      [("shipped", r["seed"]) for r in runs.solution.baseline]
                      + [("solution", r["seed"]) for r in runs.solution.results]]
    # each seed's test marker has its own shape too
    metric = panel(fig, "metric")
    markers = [line.get_marker() for line in lines(metric, "trace:") if
               line.get_gid().endswith(":test") and ":solution:" in line.get_gid()]
    assert len(set(markers)) == len(markers) == len(runs.solution.results)


@trains
def test_identical_test_scores_stand_apart_and_are_counted(runs):
    outcome = copy.copy(runs.solution)
    outcome.results = [{**r, "test/metric": 0.9312} for r in runs.solution.results]
    fig = plots.curves_figure(runs.scenario, outcome)
    metric = panel(fig, "metric")
    fig.canvas.draw()
    where = [line.get_transform().transform(line.get_xydata())[0]
             for line in lines(metric, "trace:solution:") if line.get_gid().endswith(":test")]
    assert len(where) == len(outcome.results)
    assert len({round(x, 1) for x, _ in where}) == len(where)  # side by side, not one circle
    assert len({round(y, 6) for _, y in where}) == 1
    n = len(outcome.results)
    assert f"{n} seeds at 0.9312" in words(metric)
    assert any(t.get_gid() == "same-test:solution" for t in metric.texts)


@trains
def test_a_diverged_run_says_so_on_every_panel_it_is_missing_from(runs):
    outcome = runs.diverged
    assert {s.status for s in outcome.seeds} == {"diverged"}
    steps = {r["diverged_at"] for r in outcome.results}
    fig = plots.curves_figure(runs.scenario, outcome)
    seeds = ", ".join(str(r["seed"]) for r in outcome.results)
    said = f"pipeline seeds {seeds}: diverged at step {steps.pop()}"
    metric = panel(fig, "metric")
    assert said in words(metric)
    assert "no metric/val logged, no hidden test score" in words(metric)
    for ax in fig.axes:
        if (ax.get_gid() or "").startswith("evidence:"):
            assert said in words(ax), ax.get_gid()
    loss = panel(fig, "loss")
    assert len(lines(loss, "trace:pipeline:")) >= 2 * len(outcome.results)  # curve and X
    assert all(line.get_marker() == "X" for line in lines(loss, "trace:pipeline:")
               if line.get_gid().endswith(":diverged"))
    assert "diverged (X): loss/train became nan at step" in words(loss)
    # the broken baseline, read back from the shipped run's record, is still drawn
    assert lines(metric, "trace:shipped:")


@trains
def test_the_evidence_panels_follow_the_scenarios_symptoms(runs):
    def views(symptoms):
        scenario = dataclasses.replace(runs.scenario, symptoms=tuple(
            {"id": s, "text": s} for s in symptoms))
        fig = plots.curves_figure(scenario, runs.solution)
        return [ax.get_gid() for ax in fig.axes if ax.get_gid().startswith("evidence:")]

    assert runs.scenario.symptom_ids == ("not-learning",)
    assert views(["not-learning"]) == ["evidence:grad_norm", "evidence:update_ratio"]
    assert views(["lr-collapse"]) == ["evidence:lr", "evidence:update_ratio"]
    # the serving panel waits for a batch-dependence verdict, which this fixture never has
    assert views(["eval-batch-dependence"]) == ["evidence:validation", "evidence:grad_norm"]
    # a linear model has no ReLU to watch: that panel gives way to the fallback
    assert views(["dead-units"]) == ["evidence:grad_norm", "evidence:update_ratio"]
    fig = plots.curves_figure(runs.scenario, runs.solution)
    grads = panel(fig, "evidence:grad_norm")
    assert grads.get_yscale() == "log"
    assert {line.get_gid() for line in lines(grads, "trace:")} == \
        {line.get_gid() for line in lines(panel(fig, "loss"), "trace:")}  # same axes


@trains
def test_the_quiz_picture_keeps_its_signature_and_names_no_scenario(runs, tmp_path):
    result = runs.shipped.results[0]
    png = plots.draw_quiz(tmp_path / "q" / "curves.png", result, runs.scenario.criteria,
                          "Quiz, run 1: what happened in this run?")
    width, height = plots.QUIZ_FIGSIZE[0] * plots.DPI, plots.QUIZ_FIGSIZE[1] * plots.DPI
    assert imread(png).shape == (height, width, 4)
    for evidence in ((), plots.NEUTRAL_EVIDENCE):
        fig = plots.quiz_figure(result, runs.scenario.criteria, "Quiz", evidence=evidence)
        fig.canvas.draw()
        written = " ".join(t.get_text() for t in fig.findobj(Text)).lower()
        for name in (runs.scenario.id, runs.scenario.title, runs.scenario.id.rsplit("-v", 1)[0]):
            assert name.lower() not in written
        assert "threshold:train loss" in {line.get_gid() for line in panel(fig, "loss").lines}
        assert len([ax for ax in fig.axes if ax.get_gid().startswith("evidence:")]) == \
            len(evidence)


@trains
def test_the_telemetry_comes_from_the_harness_files_only(runs, tmp_path):
    seed = Path(runs.solution.results[0]["run_dir"])
    scalars = plots.read_telemetry(seed)
    layers = [t for t in scalars if t.startswith("grad_norm/") and "global" not in t]
    assert {"lr", "loss/train", "grad_norm/global"} <= set(scalars) and layers
    assert any(t.startswith("update_ratio/") for t in scalars)
    assert not set(layers) & set(runs.solution.results[0]["series"])  # why it is read here
    planted = tmp_path / "seed"
    shutil.copytree(seed, planted)
    bogus = tmp_path / "elsewhere.sandbox"
    shutil.copy(next(seed.glob("events.out.tfevents.*.sandbox")), bogus)
    (planted / "events.out.tfevents.1.host.sandbox.1").symlink_to(bogus)  # a link: skipped
    os.mkfifo(planted / "events.out.tfevents.2.host.grader")  # a FIFO would block: skipped
    with open(planted / "events.out.tfevents.3.host.sandbox.2", "wb") as giant:
        giant.truncate(3 * 2**20)  # over the size the diagnoser reads: skipped
    (planted / "events.out.tfevents.4.host").write_bytes(b"the candidate's own")  # not ours
    assert plots.read_telemetry(planted) == scalars
    assert plots.read_telemetry(tmp_path / "gone") == {}
    assert plots.read_telemetry(None) == {}


@trains
def test_a_record_read_back_from_json_draws_the_same_panels(runs):
    """NaN is null in a record; a crashed seed has no series but its event files."""
    results = json.loads(json.dumps(strict(runs.diverged.results), default=str))
    for r in results:
        r["series"] = {}  # as a seed that crashed before reporting sends it
    traces = plots.traces_of([("the run", results, True)])
    assert all(math.isfinite(v) for _, v in traces[0].series("loss/train")[:-1])
    fig = plots.draw_figure(traces, runs.scenario.criteria, "t",
                            evidence=plots.NEUTRAL_EVIDENCE)
    assert lines(panel(fig, "loss"), "trace:the run:")  # the loss, from the event files


@trains
def test_a_log_axis_says_0_only_where_a_value_is_exactly_0(runs):
    traces = plots.traces_of([("shipped", runs.shipped.results, True)])
    for zero in (False, True):
        for trace in traces:
            trace.result = {**trace.result, "serve/output_shift": 0.0 if zero else 0.5}
        fig = plots.draw_figure(traces, runs.scenario.criteria, "t", evidence=["serving"])
        serving = panel(fig, "evidence:serving")
        fig.canvas.draw()
        labels = [t.get_text() for t in serving.get_yticklabels()]
        assert ("0" in labels) == zero, labels
