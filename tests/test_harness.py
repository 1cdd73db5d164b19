"""Isolation, determinism and scoring, through the real child processes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sandbox import catalog
from sandbox.errors import CandidateError
from sandbox.harness import candidate
from sandbox.verification import verify

from .conftest import FIXTURE_SCENARIOS, FIXTURES

TINY = catalog.get("tiny-v1", [FIXTURE_SCENARIOS])


def run_fixture(name: str, logdir: Path, seeds=(0,)):
    chosen = candidate.make(TINY, pipeline_file=FIXTURES / "pipelines" / f"{name}.py")
    return verify(TINY, chosen, seeds=list(seeds), device="cpu", logdir=logdir,
                  with_baseline=False, plot=False)


def test_a_raising_candidate_is_a_verdict_with_its_file_and_line(tmp_path):
    seed = run_fixture("raises", tmp_path).seeds[0]
    assert seed.status == "raised"
    assert seed.error == ("raised ValueError at raises.py:2 (in helper): learning rate 0.001 "
                          "is not allowed here")
    assert not seed.passed


def test_a_hanging_candidate_is_stopped_at_the_time_limit(tmp_path):
    started = time.monotonic()
    seed = run_fixture("hangs", tmp_path).seeds[0]
    assert seed.status == "hung"
    assert "time limit of 6 s" in seed.error
    assert time.monotonic() - started < TINY.criteria.time_limit_s + 10


def test_a_non_finite_loss_stops_the_run_early(tmp_path):
    outcome = run_fixture("nan_loss", tmp_path)
    seed = outcome.seeds[0]
    assert seed.status == "diverged"
    assert seed.error == "loss/train became nan at step 5"
    finite = next(c for c in seed.checks if c.name == "finite loss")
    assert not finite.passed



def test_a_run_past_its_budget_is_stopped_at_the_first_step_over(tmp_path):
    """Budget counters only grow, so the verdict is known at the first step past it;
    the run stops there (it would take 100 times the budget), and a pipeline's
    ``except Exception`` around the step does not swallow the stop."""
    seed = run_fixture("trains_too_long", tmp_path).seeds[0]
    assert seed.status == "over-budget"
    assert "over the budget of" in seed.error
    budget = next(c for c in seed.checks if c.name == "budget")
    assert not budget.passed
    steps = int(budget.measured.split(" samples, ")[1].split(" steps")[0])
    assert steps <= TINY.criteria.max_steps + 1
    samples = int(budget.measured.split(" samples")[0])
    assert samples <= TINY.criteria.max_samples + 16  # one batch of 16 past the limit

def test_a_candidate_that_eats_memory_is_stopped(tmp_path):
    seed = run_fixture("eats_memory", tmp_path).seeds[0]
    assert seed.status == "out-of-memory"
    assert "1024 MiB" in seed.error or "allocate" in seed.error


def test_a_candidate_that_kills_its_process_is_a_verdict(tmp_path):
    seed = run_fixture("exits", tmp_path).seeds[0]
    assert seed.status == "crashed"
    assert "exited with code 3" in seed.error


def test_predict_output_of_the_wrong_shape_is_named(tmp_path):
    seed = run_fixture("wrong_output", tmp_path).seeds[0]
    assert seed.status == "raised"
    assert ("predict() returned (32, 3) for a batch of 32; expected class scores of shape "
            "(32, 10)") in seed.error


@pytest.mark.parametrize("name, message", [
    ("syntax_error", "SyntaxError at syntax_error.py:4: expected ':'"),
    ("no_train", "defines no top-level train(cfg, data, run) function"),
])
def test_unrunnable_candidates_are_refused_before_running(name, message):
    with pytest.raises(CandidateError) as error:
        candidate.make(TINY, pipeline_file=FIXTURES / "pipelines" / f"{name}.py")
    assert message in str(error.value)
    assert error.value.exit_code == 1


def test_same_seed_gives_the_same_numbers_on_cpu(tmp_path):
    chosen = candidate.make(TINY, solution=True)
    first, second = (verify(TINY, chosen, seeds=[0, 1], device="cpu", logdir=tmp_path / n,
                            with_baseline=False, plot=False) for n in ("a", "b"))
    for a, b in zip(first.results, second.results, strict=True):
        assert a["series"]["loss/train"] == b["series"]["loss/train"]
        assert a["test/metric"] == b["test/metric"]
    assert first.results[0]["series"]["loss/train"] != first.results[1]["series"]["loss/train"]


def test_seeds_run_in_parallel_processes(tmp_path):
    outcome = verify(TINY, candidate.make(TINY, pipeline_file=FIXTURES / "pipelines" / "hangs.py"),
                     seeds=[0, 1], device="cpu", logdir=tmp_path, with_baseline=False,
                     plot=False)
    # two seeds that each hang for the full 6 s limit finish together, not one after another
    assert outcome.wall_time_s < 2 * TINY.criteria.time_limit_s
