"""A probe for your own training loop: the telemetry the diagnoser reads, in a few lines.

    from sandbox.probe import Probe

    probe = Probe("runs/my-experiment")         # a TensorBoard run folder
    probe.watch(model)                          # gradients, update ratios, dead ReLUs
    for step, (x, y) in enumerate(loader, 1):
        loss = loss_fn(model(x), y)
        ...
        optimizer.step()
        probe.log("loss/train", loss, step)     # any scalar; loss/train, loss/val, ...
    probe.close()                               # then: sandbox diagnose runs/

Per-layer gradient norms and update/weight ratios come from optimizer hooks, dead ReLU
units from forward hooks, both at steps 1, 2, 4, 8, ... and every ``cadence`` steps.
Tags name the layer (``grad_norm/encoder.fc1``); an index in a ``Sequential`` becomes the
layer's kind and number (``grad_norm/fc2``, ``dead_units/relu1``). ``loss/train`` and
``loss/val`` get a log10 companion (``loss/train_log10``), so a diverged run does not
flatten a healthy one on the same chart. Scalars are buffered and written every few
seconds. Nothing changes what the loop computes. ``log`` takes a tensor too, but calling
it every step on a CUDA tensor syncs the device each time: log ``loss.item()`` where you
already have it.
"""

from __future__ import annotations

import atexit
import time
from pathlib import Path

import torch

from .telemetry import EventWriter, Telemetry, companion_batches

FLUSH_EVERY_S = 2.0
DEFAULT_CADENCE = 25
PROBE_INPUTS = 32


def output_moves(first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Per input, whether its output moved between two servings by over 1% of the
    outputs' spread (logits or predictions alike), and the largest move in those units.
    Probabilities or predicted classes would hide a move where the answer is confident.
    """
    if not (torch.isfinite(first).all() and torch.isfinite(second).all()):
        return torch.ones(len(first), dtype=torch.bool), float("inf")
    scale = max(float(first.std()) if first.numel() > 1 else 0.0, 1e-12)
    moves = (first - second).abs().amax(dim=1) / scale
    return moves > 0.01, float(moves.max())


class Probe:
    """Writes scalars plus gradient and activation telemetry to one TensorBoard run."""

    def __init__(self, logdir: str | Path, cadence: int = DEFAULT_CADENCE):
        if cadence < 1:
            raise ValueError(f"cadence must be a positive number of steps, not {cadence}")
        self.logdir = Path(logdir)
        self._writer = EventWriter(self.logdir)
        self._telemetry = Telemetry(self._writer, cadence, only_watched=True)
        self._telemetry.install()
        self._last_flush = time.monotonic()
        self._closed = False
        atexit.register(self.close)

    def watch(self, model: torch.nn.Module) -> torch.nn.Module:
        """Gradient telemetry for the optimizers that train ``model``, dead-unit telemetry
        for its ``nn.ReLU`` modules. Returns ``model`` unchanged.
        """
        self._telemetry.watch(model)
        return model

    def log(self, tag: str, value: float | torch.Tensor, step: int) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach().item()
        self._writer.add(tag, float(value), int(step))
        now = time.monotonic()
        if now - self._last_flush > FLUSH_EVERY_S:
            self._last_flush = now
            self._writer.flush()

    @torch.no_grad()
    def check_batch_dependence(self, model: torch.nn.Module, inputs: torch.Tensor,
                               step: int, batch_size: int = 8) -> float:
        """Serve each of the first 32 ``inputs`` in two batches of ``batch_size`` with
        different companions, in whatever mode the model is now, and compare its outputs:
        ``serve/batch_dependence`` is the share of inputs whose output moved by over 1% of
        the outputs' spread, ``serve/output_shift`` the largest move in those units (see
        :func:`output_moves`). A model that is a fixed
        function of each input moves none; train-mode BatchNorm moves them all, even where
        the predicted class happens to hold. Each first batch is then served again, the
        same batch: ``serve/repeat_change`` is the share of inputs whose output moved
        then (dropout left on, random augmentation at inference). The model is left
        exactly as it was found: running statistics the servings updated, and the
        random-number state dropout drew from, are put back.
        """
        n, size = len(inputs), max(2, batch_size)
        if n < size + 1:
            raise ValueError(f"need more than {size} inputs to vary the batch, got {n}")
        buffers = [(b, b.clone()) for b in model.buffers()]
        rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        try:
            batches = [companion_batches(i, n, size) for i in range(min(PROBE_INPUTS, n))]
            pairs = [(model(inputs[first])[0], model(inputs[second])[0])
                     for first, second in batches]
            repeats = [model(inputs[first])[0] for first, _ in batches]
        finally:
            for buffer, saved in buffers:
                buffer.copy_(saved)
            torch.set_rng_state(rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)
        first = torch.stack([a.reshape(-1) for a, _ in pairs]).double().cpu()
        second = torch.stack([b.reshape(-1) for _, b in pairs]).double().cpu()
        moved, shift = output_moves(first, second)
        fraction = float(moved.float().mean())
        again = torch.stack([a.reshape(-1) for a in repeats]).double().cpu()
        repeated, _ = output_moves(first, again)
        self.log("serve/batch_dependence", fraction, step)
        self.log("serve/output_shift", shift, step)
        self.log("serve/repeat_change", float(repeated.float().mean()), step)
        return fraction

    @property
    def steps(self) -> int:
        """Optimizer steps taken by the watched model's optimizers so far."""
        return self._telemetry.steps

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        """Remove the hooks and write what is buffered; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._telemetry.remove()
        self._writer.close()
        atexit.unregister(self.close)

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
