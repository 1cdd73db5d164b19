"""What the harness measures inside the candidate's process besides the data's path.

- :class:`ClipMonitor`: on how many optimizer steps the gradient was rescaled between the
  end of ``backward()`` and ``optimizer.step()`` (clipping, by any name). The Tuning
  Playbook's rule of thumb: clipping that acts on more than half of the steps is a
  smaller learning rate in disguise.
- :func:`gradient_hooks`: hooks that can change a gradient where the monitor cannot see
  it (tensor hooks on parameters, module backward hooks).
- :class:`ServingMonitor`: which mode-dependent modules (BatchNorm, dropout) run in
  training mode while ``predict`` serves, and which buffers serving changed.
- :func:`missing_hooks`: the harness's own global hooks, removed by the candidate.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as nn_module
from torch.optim import optimizer as optim_module

RESCALE_TOLERANCE = 1e-3  # relative change of the global gradient norm counted as rescaling
ALWAYS_MEASURED_STEPS = 8  # norms are compared on these steps, and on every step once a
# step has touched the gradients in place (cheap version checks say when)


def _total_norm(grads: list[torch.Tensor]) -> float:
    if not grads:
        return 0.0
    return float(torch.stack(torch._foreach_norm(grads)).square().sum().sqrt())


class ClipMonitor:
    """Compares the gradients the optimizer steps on with those ``backward()`` produced."""

    def __init__(self) -> None:
        self.measured = 0
        self.rescaled = 0
        self.unknown = 0  # touched in place on a step whose norms were not taken
        self._optimizers: weakref.WeakSet = weakref.WeakSet()
        self._snapshot: tuple[list, list, list, float | None] | None = None
        self._touched_seen = False
        self._handle: Any = None

    def install(self) -> None:
        self._handle = optim_module.register_optimizer_step_pre_hook(self._before_step)

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def handles(self) -> list[tuple[str, dict, int]]:
        return [("optimizer step pre-hook", optim_module._global_optimizer_pre_hooks,
                 self._handle.id)]

    def after_backward(self) -> None:
        """Called by the tracer when a backward pass through the model ends."""
        params = [p for opt in list(self._optimizers) for group in opt.param_groups
                  for p in group["params"] if p.grad is not None]
        if not params:
            self._snapshot = None
            return
        grads = [p.grad for p in params]
        watch = self.measured < ALWAYS_MEASURED_STEPS or self._touched_seen
        norm = _total_norm(grads) if watch else None
        self._snapshot = (params, grads, [g._version for g in grads], norm)

    def _before_step(self, optimizer: torch.optim.Optimizer, args: object,
                     kwargs: object) -> None:
        self._optimizers.add(optimizer)
        snapshot, self._snapshot = self._snapshot, None
        if snapshot is None:
            return
        params, grads, versions, norm = snapshot
        self.measured += 1
        touched = any(p.grad is not g or g._version != v
                      for p, g, v in zip(params, grads, versions, strict=True))
        if not touched:
            return
        self._touched_seen = True
        if norm is None:
            self.unknown += 1
            return
        now = _total_norm([p.grad for p in params if p.grad is not None])
        if abs(now - norm) > RESCALE_TOLERANCE * max(norm, 1e-12):
            self.rescaled += 1

    def summary(self) -> dict[str, int]:
        return {"measured": self.measured, "rescaled": self.rescaled, "unknown": self.unknown}


def gradient_hooks(models: list[nn.Module]) -> list[str]:
    """Hooks that can rewrite a gradient before the optimizer sees it, by name."""
    found = []
    if nn_module._global_backward_hooks or nn_module._global_backward_pre_hooks:
        found.append("a global module backward hook")
    for model in models:
        for name, param in model.named_parameters():
            if param._backward_hooks or getattr(param, "_post_accumulate_grad_hooks", None):
                found.append(f"parameter {name or '?'}")
        for name, module in model.named_modules():
            if module._backward_hooks or module._backward_pre_hooks:
                found.append(f"module {name or type(module).__name__}")
    return sorted(set(found))


def missing_hooks(handles: list[tuple[str, dict, int]]) -> list[str]:
    """The harness's hooks that are no longer registered (removed by the candidate)."""
    return [what for what, registry, key in handles if key not in registry]


def _mode_dependent(module: nn.Module) -> bool:
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return module.track_running_stats
    if isinstance(module, nn.modules.instancenorm._InstanceNorm):
        return module.track_running_stats
    if isinstance(module, nn.modules.dropout._DropoutNd | nn.RNNBase | nn.MultiheadAttention):
        return getattr(module, "p", getattr(module, "dropout", 0.0)) > 0
    return False


class ServingMonitor:
    """While installed: every mode-dependent module that runs in training mode."""

    def __init__(self, model: nn.Module):
        self._names = {id(m): f"{name or 'model'} ({type(m).__name__})"
                       for name, m in model.named_modules()}
        self.train_mode: dict[str, None] = {}
        self._buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
        self._model = model
        self._handle: Any = None

    def __enter__(self) -> ServingMonitor:
        self._handle = nn_module.register_module_forward_pre_hook(self._pre)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()

    def _pre(self, module: nn.Module, args: tuple) -> None:
        if module.training and _mode_dependent(module):
            self.train_mode[self._names.get(id(module), type(module).__name__)] = None

    def summary(self) -> dict[str, list[str]]:
        now = dict(self._model.named_buffers())
        changed = [name for name, before in self._buffers.items()
                   if name in now and not torch.equal(now[name].detach().cpu(), before.cpu())]
        return {"train_mode": list(self.train_mode), "buffers_changed": changed}
