from __future__ import annotations

import math
from pathlib import Path

import torch

from sandbox.telemetry import (
    EventWriter,
    GradientWatcher,
    Telemetry,
    layer_name,
    layer_names,
    module_names,
    read_scalars,
)


def test_events_read_back_with_tensorboards_reader(tmp_path: Path):
    writer = EventWriter(tmp_path)
    for step in range(1, 101):
        writer.add("loss/train", 1.0 / step, step)
    writer.flush()
    writer.add("loss/train", math.nan, 101)
    writer.flush()
    series = read_scalars(tmp_path)
    assert len(series["loss/train"]) == 101
    assert series["loss/train"][9] == (10, 0.10000000149011612)  # float32 on disk
    assert math.isnan(series["loss/train"][-1][1])


def test_gradient_watcher_logs_per_layer_at_its_cadence(tmp_path: Path):
    writer = EventWriter(tmp_path)
    watcher = GradientWatcher(writer, cadence=5)  # steps 1, 2, 4, 5, 8, 10
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    watcher.watch(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    watcher.install()
    try:
        for _ in range(12):
            optimizer.zero_grad()
            model(torch.randn(16, 4)).pow(2).mean().backward()
            optimizer.step()
    finally:
        watcher.remove()
    writer.flush()
    assert watcher.steps == 12
    series = read_scalars(tmp_path)
    assert {"lr", "grad_norm/fc1", "grad_norm/fc2", "grad_norm/global", "update_ratio/fc1",
            "update_ratio/fc2"} <= set(series)
    assert [s for s, _ in series["grad_norm/fc1"]] == [1, 2, 4, 5, 8, 10]
    assert all(v > 0 for _, v in series["update_ratio/fc2"])
    peaks, norms = dict(series["grad_norm/global_max"]), dict(series["grad_norm/global"])
    assert all(peaks[s] >= norms[s] for s in norms)  # the peak covers the steps between


def test_the_running_maximum_keeps_a_burst_between_logged_steps(tmp_path: Path):
    writer = EventWriter(tmp_path)
    watcher = GradientWatcher(writer, cadence=5)  # logs steps 1, 2, 4, 5, 8, 10
    layer = torch.nn.Linear(3, 1)
    watcher.watch(layer)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.0)
    watcher.install()
    try:
        for step in range(1, 11):
            optimizer.zero_grad()
            (layer(torch.ones(1, 3)).sum() * (1000.0 if step == 7 else 1.0)).backward()
            optimizer.step()
    finally:
        watcher.remove()
    writer.flush()
    series = read_scalars(tmp_path)
    global_norm = dict(series["grad_norm/global"])[1]  # weight and bias: sqrt(3 + 1) = 2
    assert global_norm == 2.0
    assert dict(series["grad_norm/global_max"])[8] == 2000.0  # step 7's burst, logged at 8


def test_layers_the_optimizer_cannot_move_are_logged_as_still(tmp_path: Path):
    """The optimizer was built over a model object that was then replaced, and one layer
    of the replacement is frozen: neither moves, and the log says so with a ratio of 0.
    """
    writer = EventWriter(tmp_path)
    watcher = GradientWatcher(writer, cadence=5)

    def net() -> torch.nn.Sequential:
        return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))

    stale, model = net(), net()
    watcher.watch(model)
    optimizers = [torch.optim.SGD(stale.parameters(), lr=0.1),
                  torch.optim.SGD(model.parameters(), lr=0.1)]
    watcher.install()
    try:
        for step in range(8):
            optimizer = optimizers[step >= 4]  # then the right one, with layer 0 frozen
            model[0].requires_grad_(step < 4)
            optimizer.zero_grad()
            model(torch.randn(16, 4)).pow(2).mean().backward()
            optimizer.step()
    finally:
        watcher.remove()
    writer.flush()
    series = read_scalars(tmp_path)
    assert [v for _, v in series["update_ratio/fc1"]] == [0.0] * 5  # steps 1, 2, 4, 5, 8
    assert [v == 0.0 for _, v in series["update_ratio/fc2"]] == [True] * 3 + [False] * 2
    assert "grad_norm/fc2" in series and "grad_norm/fc1" not in series


def _train_steps(model: torch.nn.Module, telemetry: Telemetry, steps: int,
                 x: torch.Tensor) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    telemetry.install()
    try:
        for _ in range(steps):
            optimizer.zero_grad()
            model(x).pow(2).mean().backward()
            optimizer.step()
    finally:
        telemetry.remove()


def test_dead_units_counts_relus_silent_for_the_whole_batch(tmp_path: Path):
    writer = EventWriter(tmp_path)
    telemetry = Telemetry(writer, cadence=5)
    first = torch.nn.Linear(4, 8)
    with torch.no_grad():  # units 0-5 can never fire on positive inputs; 6-7 always do
        first.weight.zero_()
        first.bias.copy_(torch.tensor([-5.0] * 6 + [5.0] * 2))
    model = torch.nn.Sequential(first, torch.nn.ReLU(), torch.nn.Linear(8, 2))
    telemetry.watch(model)
    _train_steps(model, telemetry, 6, torch.rand(32, 4))
    model.eval()
    model(torch.rand(32, 4))  # evaluation passes are not training telemetry
    writer.flush()
    series = read_scalars(tmp_path)
    assert [s for s, _ in series["dead_units/relu1"]] == [1, 2, 4, 5]
    assert {v for _, v in series["dead_units/relu1"]} == {0.75}


def test_probe_style_telemetry_ignores_optimizers_of_other_models(tmp_path: Path):
    writer = EventWriter(tmp_path)
    telemetry = Telemetry(writer, cadence=5, only_watched=True)
    watched, other = torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)
    telemetry.watch(watched)
    other_optimizer = torch.optim.SGD(other.parameters(), lr=0.1)
    telemetry.install()
    try:
        other(torch.randn(8, 4)).sum().backward()
        other_optimizer.step()
    finally:
        telemetry.remove()
    assert telemetry.steps == 0
    _train_steps(watched, telemetry, 3, torch.randn(8, 4))
    assert telemetry.steps == 3


# -- layer names -------------------------------------------------------------------------
def _tags(model: torch.nn.Module) -> list[str]:
    return [name for name, _ in layer_names(model)]


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.norm = torch.nn.Linear(4, 8), torch.nn.LayerNorm(8)
        self.body = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(),
                                        torch.nn.Linear(8, 8), torch.nn.ReLU())


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.head = Encoder(), torch.nn.Linear(8, 2)
        self.scale = torch.nn.Parameter(torch.ones(2, 2))  # the model's own weight


def test_a_bare_sequential_names_each_layer_by_its_kind_and_ordinal():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8),
                                torch.nn.ReLU(), torch.nn.Linear(8, 2))
    assert _tags(model) == ["fc1", "fc2", "fc3"]  # parameter order, as before
    names = module_names(model)
    assert [names[str(i)] for i in range(5)] == ["fc1", "relu1", "fc2", "relu2", "fc3"]


def test_named_submodules_keep_their_names_and_indices_inside_them_are_named():
    assert _tags(Net()) == ["scale", "encoder.fc1", "encoder.body.fc1", "encoder.body.fc2",
                            "head"]  # the model's own parameters come first
    assert module_names(Net())["encoder.body.3"] == "encoder.body.relu2"


def test_conv_bn_stacks_nested_blocks_and_embeddings_are_named_by_kind():
    model = torch.nn.Sequential(
        torch.nn.Embedding(10, 4),
        torch.nn.Sequential(torch.nn.Conv1d(4, 4, 3), torch.nn.BatchNorm1d(4), torch.nn.ReLU()),
        torch.nn.Sequential(torch.nn.Conv1d(4, 4, 3), torch.nn.BatchNorm1d(4), torch.nn.ReLU()),
        torch.nn.Flatten(), torch.nn.Linear(8, 2))
    assert _tags(model) == ["emb1", "block1.conv1", "block2.conv1", "fc1"]
    names = module_names(model)
    assert (names["1.1"], names["2.2"], names["3"]) == ("block1.bn1", "block2.relu1", "flatten1")


def test_recurrent_weights_keep_their_own_names():
    assert _tags(torch.nn.Sequential(torch.nn.LSTM(3, 8), torch.nn.Linear(8, 2))) == [
        "lstm1.weight_ih_l0", "lstm1.weight_hh_l0", "fc1"]
    assert _tags(torch.nn.LSTM(3, 8)) == ["lstm.weight_ih_l0", "lstm.weight_hh_l0"]  # bare
    assert _tags(torch.nn.Linear(3, 1)) == ["fc"]


def test_names_are_unique_and_stable_even_where_a_sibling_has_the_generated_name():
    from collections import OrderedDict
    model = torch.nn.Sequential(OrderedDict([("fc1", torch.nn.Linear(4, 4)),
                                             ("1", torch.nn.Linear(4, 4))]))
    assert _tags(model) == ["fc1", "fc1_1"]
    again = torch.nn.Sequential(OrderedDict([("fc1", torch.nn.Linear(4, 4)),
                                             ("1", torch.nn.Linear(4, 4))]))
    assert _tags(again) == _tags(model)
    shared = torch.nn.Linear(4, 4)
    tied = torch.nn.Sequential(shared, torch.nn.ReLU(), shared)
    assert _tags(tied) == ["fc1"]  # a shared layer is one layer, named where first met
    assert layer_name("net.0.weight") == "net.0"  # without the model: the old name


def test_tags_stay_in_parameter_order_for_the_vanishing_gradient_rule(tmp_path: Path):
    """The rule compares the first and the last layer in the order tags were written."""
    writer = EventWriter(tmp_path)
    watcher = GradientWatcher(writer, cadence=5)
    model = torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh())
                                  for _ in range(3)], torch.nn.Linear(4, 2))
    watcher.watch(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    watcher.install()
    try:
        optimizer.zero_grad()
        model(torch.randn(8, 4)).sum().backward()
        optimizer.step()
    finally:
        watcher.remove()
    writer.close()
    from sandbox.diagnosis.logs import read_files
    log = read_files(sorted(tmp_path.glob("events.out.tfevents.*")), ".", tmp_path)
    assert [t for t in log.scalars if t.startswith("grad_norm/") and "global" not in t] == [
        "grad_norm/block1.fc1", "grad_norm/block2.fc1", "grad_norm/block3.fc1",
        "grad_norm/fc1"]


# -- the log-scale loss -------------------------------------------------------------------
def test_losses_get_a_log10_companion_and_values_without_a_logarithm_are_left_out(
        tmp_path: Path):
    writer = EventWriter(tmp_path)
    for step, value in enumerate([100.0, 0.01, 1e30, math.inf, math.nan, 0.0, -1.0], 1):
        writer.add("loss/train", value, step)
    writer.add("loss/val", 10.0, 1)
    writer.add("metric/val", 10.0, 1)
    writer.close()
    series = read_scalars(tmp_path)
    assert series["loss/train_log10"] == [(1, 2.0), (2, -2.0), (3, 30.0)]
    assert series["loss/val_log10"] == [(1, 1.0)]
    assert len(series["loss/train"]) == 7  # the tag itself keeps every value
    assert not any(tag.startswith("metric/val_") for tag in series)


def test_the_diagnoser_never_takes_the_log_scale_tag_for_a_curve():
    from sandbox.diagnosis.tags import curves
    found = curves({"loss/train_log10": [(1, 0.3), (2, 0.2), (3, 0.1)],
                    "loss/val_log10": [(1, 0.3)], "loss/train": [(1, 2.0), (2, 1.0)]})
    assert found.names == {"train_loss": "loss/train"}
    alone = curves({"loss/train_log10": [(1, 0.3), (2, 0.2)]})
    assert alone.train_loss == [] and alone.val_loss == [] and alone.names == {}
