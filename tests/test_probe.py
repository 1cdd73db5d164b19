"""The probe in real training loops (the benchmark's zoo, seed 0): the telemetry it
writes is what the diagnoser needs, and healthy loops stay free of findings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks.probe_zoo import CASES
from sandbox.diagnosis import diagnose
from sandbox.probe import Probe
from sandbox.telemetry import read_scalars

ZOO = {case.name: case for case in CASES}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models on two xdist workers: more threads only fight over the two cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", ["healthy-small-batch", "healthy-step-lr", "dying-relu",
                                  "unshuffled", "batchnorm-train-mode-eval", "lr-too-low",
                                  "milestones-per-batch", "frozen-backbone",
                                  "objective-ascent"])
def test_zoo_case_is_diagnosed_as_labelled(name: str, tmp_path: Path):
    case = ZOO[name]
    case.loop(0, tmp_path)
    [run] = diagnose(tmp_path)
    named = {f.symptom for f in run.findings}
    assert case.expect <= named <= case.expect | case.allow, named


def test_probe_writes_gradient_and_activation_telemetry(tmp_path: Path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with Probe(tmp_path, cadence=4) as probe:
        assert probe.watch(model) is model
        for step in range(1, 9):
            loss = model(torch.randn(16, 4)).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            probe.log("loss/train", loss, step)  # a tensor is fine
        assert probe.steps == 8
    probe.close()  # a second close is harmless
    series = read_scalars(tmp_path)
    assert [s for s, _ in series["grad_norm/0"]] == [1, 2, 4, 8]
    assert {"grad_norm/2", "grad_norm/global", "update_ratio/0", "dead_units/1", "lr"} <= set(
        series)
    assert len(series["loss/train"]) == 8


def test_hooks_are_gone_after_close(tmp_path: Path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    probe = Probe(tmp_path)
    probe.watch(model)
    probe.close()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    assert probe.steps == 0
    assert not model[1]._forward_hooks


def test_a_bad_cadence_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ValueError, match="cadence must be a positive number"):
        Probe(tmp_path, cadence=0)


def test_batch_dependence_is_zero_for_an_eval_mode_model(tmp_path: Path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8),
                                torch.nn.Linear(8, 3))
    inputs = torch.randn(64, 4)
    with Probe(tmp_path) as probe:
        model.eval()
        assert probe.check_batch_dependence(model, inputs, step=1) == 0.0
        model.train()
        assert probe.check_batch_dependence(model, inputs, step=2, batch_size=4) > 0.0
    assert [s for s, _ in read_scalars(tmp_path)["serve/batch_dependence"]] == [1, 2]
