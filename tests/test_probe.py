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
    assert [s for s, _ in series["grad_norm/fc1"]] == [1, 2, 4, 8]
    assert {"grad_norm/fc2", "grad_norm/global", "update_ratio/fc1", "dead_units/relu1",
            "lr"} <= set(series)
    assert len(series["loss/train"]) == 8
    assert len(series["loss/train_log10"]) == 8  # the probe's loss gets its log scale too


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


def _train_a_few_steps(model: torch.nn.Module, inputs: torch.Tensor, folder: Path) -> dict:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with Probe(folder) as probe:
        probe.watch(model)
        for step in range(1, 5):
            loss = model(inputs).float().pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            probe.log("loss/train", loss.item(), step)
    return read_scalars(folder)


class LastStep(torch.nn.Module):
    def __init__(self, rnn: torch.nn.Module, width: int):
        super().__init__()
        self.rnn, self.head = rnn, torch.nn.Linear(width, 2)

    def forward(self, x):
        out = self.rnn(x)
        return self.head((out[0] if isinstance(out, tuple) else out)[:, -1])


@pytest.mark.parametrize("kind", ["lstm", "transformer", "conv-bn"])
def test_every_weight_gets_its_own_readable_tag(kind: str, tmp_path: Path):
    """An LSTM's input and recurrent weights, a transformer's in- and out-projections and
    a Conv/BN stack are separate layers in the log, named after their parameters."""
    torch.manual_seed(0)
    if kind == "lstm":
        model, inputs = LastStep(torch.nn.LSTM(3, 8, batch_first=True), 8), torch.randn(4, 5, 3)
        expected = {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "head"}
    elif kind == "transformer":
        layer = torch.nn.TransformerEncoderLayer(8, 2, 16, 0.0, batch_first=True)
        model, inputs = LastStep(layer, 8), torch.randn(4, 5, 8)
        expected = {"rnn.self_attn.in_proj_weight", "rnn.self_attn.out_proj",
                    "rnn.linear1", "rnn.linear2", "head"}
    else:
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                                    torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 2))
        inputs, expected = torch.randn(4, 1, 8, 8), {"conv1", "fc1"}
    series = _train_a_few_steps(model, inputs, tmp_path)
    weights = [name for name, p in model.named_parameters() if p.ndim > 1]
    tagged = {tag.removeprefix("grad_norm/") for tag in series
              if tag.startswith("grad_norm/") and not tag.startswith("grad_norm/global")}
    assert tagged == expected and len(tagged) == len(weights)
    assert all(len(points) == 3 for tag, points in series.items()  # steps 1, 2 and 4:
               if tag.startswith("update_ratio/"))                  # one value per step


def test_batch_dependence_measures_outputs_and_leaves_the_model_as_it_was(tmp_path: Path):
    """Train-mode BatchNorm moves every output with the batch, even where the predicted
    class holds; the check must see that, and put back the running statistics and the
    random-number state its servings used."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Flatten(),
                                torch.nn.Linear(144, 3))
    with torch.no_grad():
        model[-1].bias.copy_(torch.tensor([5.0, 0.0, 0.0]))  # class 0 whatever the batch
    inputs = torch.randn(64, 1, 8, 8)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    with Probe(tmp_path) as probe:
        moved = probe.check_batch_dependence(model, inputs, step=1, batch_size=4)
        model.eval()
        still = probe.check_batch_dependence(model, inputs, step=2, batch_size=4)
    assert moved > 0.5 and still == 0.0
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with torch.no_grad():
        assert (model(inputs).argmax(1) == 0).all()  # the classes never changed
    series = read_scalars(tmp_path)
    assert series["serve/output_shift"][0][1] > 0.1 > 0.01 >= series["serve/output_shift"][1][1]
