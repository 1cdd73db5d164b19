"""TensorBoard telemetry that is cheap enough to leave on.

Two costs dominate naive logging in small training loops: ``SummaryWriter.add_scalar``
spends ~150 us a call, most of it in tensorboard's pure-Python CRC32C. So scalars are
buffered in memory (under a microsecond each) and written in batches as standard
TFRecord event files, framed with the C implementation of CRC32C; tensorboard's own
reader reads them back. Gradient telemetry runs on a schedule from global optimizer
hooks, so it needs nothing from the pipeline beyond ``run.watch(model)`` for layer names.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable
from pathlib import Path

import torch
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary

try:
    from google_crc32c import value as _crc32c
except ImportError:  # pragma: no cover - the dependency ships wheels; this is a safety net
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c as _crc32c


def _masked_crc(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _record(payload: bytes) -> bytes:
    header = struct.pack("<Q", len(payload))
    return (header + struct.pack("<I", _masked_crc(header)) + payload
            + struct.pack("<I", _masked_crc(payload)))


class EventWriter:
    """Buffers scalars and appends them to one ``events.out.tfevents.*`` file on flush."""

    def __init__(self, logdir: Path):
        logdir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self.path = logdir / f"events.out.tfevents.{int(now)}.{socket.gethostname()}.sandbox"
        self._pending: list[tuple[str, float, int, float]] = []
        first = Event(wall_time=now, step=0, file_version="brain.Event:2")
        self.path.write_bytes(_record(first.SerializeToString()))

    def add(self, tag: str, value: float, step: int) -> None:
        self._pending.append((tag, value, step, time.time()))

    def flush(self) -> None:
        """One event record per step, holding every scalar of that step: a record costs
        about as much as the values in it, so this halves the work for gradient steps.
        """
        if not self._pending:
            return
        by_step: dict[int, tuple[float, list[Summary.Value]]] = {}
        for tag, value, step, wall in self._pending:
            by_step.setdefault(step, (wall, []))[1].append(
                Summary.Value(tag=tag, simple_value=value))
        self._pending.clear()
        records = [_record(Event(wall_time=wall, step=step, summary=Summary(value=values))
                           .SerializeToString()) for step, (wall, values) in by_step.items()]
        with self.path.open("ab") as handle:
            handle.write(b"".join(records))


def layer_name(param_name: str) -> str:
    """``net.0.weight`` -> ``net.0``: per-layer tags read better than per-tensor ones."""
    return param_name.rsplit(".", 1)[0] if "." in param_name else param_name


def due(step: int, cadence: int) -> bool:
    """Gradient telemetry at steps 1, 2, 4, 8, ... and every ``cadence`` steps: dense where
    explosions and vanishing show (the first steps), sparse once training is steady.
    """
    return step % cadence == 0 or step & (step - 1) == 0


class GradientWatcher:
    """Per-layer gradient norms, update/weight ratios and the learning rate at the steps
    :func:`due` picks; and the exact count of optimizer steps (the budget).
    """

    def __init__(self, writer: EventWriter, cadence: int):
        self.writer = writer
        self.cadence = cadence
        self.steps = 0
        self.names: dict[int, str] = {}
        self._before: dict[int, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def watch(self, model: torch.nn.Module) -> None:
        for name, param in model.named_parameters():
            if param.ndim > 1:
                self.names[id(param)] = layer_name(name)

    def install(self) -> None:
        from torch.optim.optimizer import (
            register_optimizer_step_post_hook,
            register_optimizer_step_pre_hook,
        )
        self._handles = [register_optimizer_step_pre_hook(self._pre),
                         register_optimizer_step_post_hook(self._post)]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    def _layers(self, optimizer: torch.optim.Optimizer) -> Iterable[tuple[str, torch.Tensor]]:
        params = [p for group in optimizer.param_groups for p in group["params"] if p.ndim > 1]
        for index, param in enumerate(params):
            yield self.names.get(id(param), f"param{index}"), param

    def _pre(self, optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        self.steps += 1
        if not due(self.steps, self.cadence):
            return
        step = self.steps
        self.writer.add("lr", float(optimizer.param_groups[0]["lr"]), step)
        names, grads = [], []
        with torch.no_grad():
            for name, param in self._layers(optimizer):
                if param.grad is not None:
                    names.append(name)
                    grads.append(param.grad.detach().norm())
                    self._before[id(param)] = param.detach().clone()
            if grads:
                norms = torch.stack(grads)
                total = float(norms.square().sum().sqrt())
                for name, norm in zip(names, norms.tolist(), strict=True):
                    self.writer.add(f"grad_norm/{name}", norm, step)
                self.writer.add("grad_norm/global", total, step)

    def _post(self, optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        if not self._before:
            return
        names, ratios = [], []
        with torch.no_grad():
            for name, param in self._layers(optimizer):
                before = self._before.get(id(param))
                if before is not None:
                    names.append(name)
                    ratios.append((param - before).norm() / (before.norm() + 1e-12))
            values = torch.stack(ratios).tolist() if ratios else []
        for name, ratio in zip(names, values, strict=True):
            self.writer.add(f"update_ratio/{name}", ratio, self.steps)
        self._before.clear()


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in a run folder, read with tensorboard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator
    accumulator = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0})
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}
