"""The public Python API that notebooks use (the CLI is tested in test_cli.py)."""

from __future__ import annotations

import sandbox

from .conftest import FIXTURE_SCENARIOS


def test_list_and_load_without_torch_work_on_user_folders():
    ids = [s.id for s in sandbox.list_scenarios([FIXTURE_SCENARIOS])]
    assert "tiny-v1" in ids and "exploding-lr-v2" in ids
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


def test_diagnose_and_probe_from_the_api(tmp_path):
    import torch

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with sandbox.Probe(tmp_path / "mine") as probe:
        probe.watch(model)
        for step in range(1, 31):
            loss = model(torch.randn(8, 3)).pow(2).mean() + (float("nan") if step == 30 else 0.0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            probe.log("loss/train", loss.item(), step)
    [run] = sandbox.diagnose(tmp_path)
    assert run.name == "mine"
    assert ("sudden-nan", 30) in [(f.symptom, f.step) for f in run.findings]
