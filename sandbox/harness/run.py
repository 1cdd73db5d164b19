"""The ``run`` handle a pipeline receives: logging, model watching, device and seed."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from ..telemetry import EventWriter, Telemetry
from .protocol import MAX_STEP

FLUSH_EVERY_S = 2.0
PROGRESS_EVERY_S = 0.25


class NonFiniteLoss(Exception):
    """Raised inside ``run.log`` to stop a run whose loss is no longer a number."""

    def __init__(self, tag: str, value: float, step: int):
        super().__init__(f"{tag} became {value} at step {step}")
        self.tag, self.value, self.step = tag, value, step


class OverBudget(BaseException):
    """Raised from the optimizer's step hook once a run has taken more steps, or trained on
    more samples, than the scenario allows: the budget criterion can only fail from there
    on, so training further would cost time and change nothing. A BaseException, so a
    pipeline's ``except Exception`` does not swallow it (and if something does, the next
    step raises it again).
    """

    def __init__(self, what: str, used: int, limit: int, step: int):
        super().__init__(f"stopped at optimizer step {step}: {used} {what}, over the budget "
                         f"of {limit}")


class Run:
    """What the harness hands the pipeline as ``run``.

    ``run.log(tag, value, step)`` records a scalar (tags ``loss/train``, ``loss/val`` and
    ``metric/val`` are the ones verification reads); ``run.watch(model)`` names the layers
    for gradient telemetry; ``run.device`` and ``run.seed`` say where and how to run.
    A ``loss/*`` value that is NaN or infinite stops the run at once.
    """

    def __init__(self, seed: int, device: torch.device, writer: EventWriter,
                 telemetry: Telemetry, on_progress: Callable[[int, float], None]):
        self.seed = seed
        self.device = device
        self.series: dict[str, list[tuple[int, float]]] = {}
        self._writer = writer
        self._telemetry = telemetry
        self._on_progress = on_progress
        self._last_flush = self._last_progress = time.monotonic()

    def log(self, tag: str, value: float | torch.Tensor, step: int) -> None:
        value = float(value.detach().item() if isinstance(value, torch.Tensor) else value)
        step = int(step)
        if not 0 <= step < MAX_STEP:
            raise ValueError(f"run.log({tag!r}): step {step} is out of range (0 to 2^62)")
        self.series.setdefault(tag, []).append((step, value))
        self._writer.add(tag, value, step)
        if tag.startswith("loss/") and not math.isfinite(value):
            raise NonFiniteLoss(tag, value, step)
        now = time.monotonic()
        if now - self._last_progress > PROGRESS_EVERY_S:
            self._last_progress = now
            self._on_progress(step, value)
            if now - self._last_flush > FLUSH_EVERY_S:
                self._last_flush = now
                self._writer.flush()

    def watch(self, model: torch.nn.Module) -> torch.nn.Module:
        """Name ``model``'s layers in the gradient telemetry and watch its ReLUs for dead
        units; returns the model unchanged.
        """
        self._telemetry.watch(model)
        return model

    @property
    def optimizer_steps(self) -> int:
        return self._telemetry.steps
