from __future__ import annotations

import math
from pathlib import Path

import torch

from sandbox.telemetry import EventWriter, GradientWatcher, Telemetry, read_scalars


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
    assert {"lr", "grad_norm/0", "grad_norm/2", "grad_norm/global", "update_ratio/0",
            "update_ratio/2"} <= set(series)
    assert [s for s, _ in series["grad_norm/0"]] == [1, 2, 4, 5, 8, 10]
    assert all(v > 0 for _, v in series["update_ratio/2"])
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
    assert [v for _, v in series["update_ratio/0"]] == [0.0] * 5  # steps 1, 2, 4, 5, 8
    assert [v == 0.0 for _, v in series["update_ratio/2"]] == [True] * 3 + [False] * 2
    assert "grad_norm/2" in series and "grad_norm/0" not in series


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
    assert [s for s, _ in series["dead_units/1"]] == [1, 2, 4, 5]
    assert {v for _, v in series["dead_units/1"]} == {0.75}


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
