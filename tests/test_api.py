"""The public Python API that notebooks use (the CLI is tested in test_cli.py)."""

from __future__ import annotations

import sandbox

from .conftest import FIXTURE_SCENARIOS


def test_list_and_load_without_torch_work_on_user_folders():
    ids = [s.id for s in sandbox.list_scenarios([FIXTURE_SCENARIOS])]
    assert "tiny-v1" in ids and "exploding-lr-v1" in ids
    assert sandbox.load_scenario("tiny", [FIXTURE_SCENARIOS]).seeds == (0, 1)


def test_run_is_one_seed_and_verify_judges_every_seed(tmp_path):
    one = sandbox.run("tiny-v1", overrides=["optimizer.lr=0.5"], device="cpu",
                      logdir=tmp_path, extra_dirs=[FIXTURE_SCENARIOS])
    assert [s.seed for s in one.seeds] == [0] and one.passed
    every = sandbox.verify("tiny-v1", device="cpu", logdir=tmp_path,
                           extra_dirs=[FIXTURE_SCENARIOS])
    assert [s.seed for s in every.seeds] == [0, 1] and not every.passed
    assert every.failed_checks == ["test accuracy", "train loss"]
    assert every.to_json()["verdict"] == "fail"
