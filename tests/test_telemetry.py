from __future__ import annotations

import math
from pathlib import Path

import torch

from sandbox.telemetry import EventWriter, GradientWatcher, read_scalars


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
