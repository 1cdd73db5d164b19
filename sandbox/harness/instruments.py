"""What the harness measures inside the candidate's process besides the data's path.

- :class:`ClipMonitor`: on how many optimizer steps the gradient the optimizer used
  differs from the one ``backward()`` produced (clipping by any name, in the loop or in
  an overridden ``step``). The Tuning Playbook's rule of thumb: clipping that acts on most
  steps is a smaller learning rate in disguise.
- :class:`GradientRecord`: which tensors received gradients, in the model or not (the
  capacity lock counts what is trained, not only what is registered).
- :func:`gradient_hooks`: hooks that can change a gradient where the monitor cannot see
  it (tensor hooks on parameters, module backward hooks).
- :class:`ServingMonitor`: which normalisation or dropout layers use batch statistics or
  training-mode behaviour while ``predict`` serves, and which buffers serving changed.
- :class:`Seal`: the harness's own code and the torch functions it relies on, as they
  were before the candidate's code ran; anything rebound since is tampering.
- :func:`missing_hooks`: the harness's global hooks, removed by the candidate.

The candidate's code shares this process, so all of this holds against cheap tricks,
not against a determined author (the README's section for graders says so).
"""

from __future__ import annotations

import os
import random
import sys
import types
import weakref
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as nn_module
from torch.optim import optimizer as optim_module

RESCALE_TOLERANCE = 1e-3  # relative change of the global gradient norm counted as rescaling
ALWAYS_MEASURED_STEPS = 16  # the first steps are all compared; after that a random share
SAMPLED_SHARE = 0.25  # (drawn from the OS, so the candidate cannot know which)


def _total_norm(grads: list[torch.Tensor]) -> float:
    if not grads:
        return 0.0
    return float(torch.stack(torch._foreach_norm(grads)).square().sum().sqrt())


class ClipMonitor:
    """Compares the gradients after the optimizer step with those ``backward()`` produced.

    Norms, not in-place version counters: a change made through ``.data`` or inside an
    overridden ``step()`` shows in the norm.
    """

    def __init__(self) -> None:
        self.steps = 0  # steps that followed a backward pass the tracer saw
        self.measured = 0
        self.rescaled = 0
        self._optimizers: weakref.WeakSet = weakref.WeakSet()
        self._snapshot: tuple[list[torch.Tensor], float] | None = None
        self._pending = False  # a backward pass ended and no step has followed it yet
        self._random = random.Random(os.urandom(16))
        self._handle: Any = None

    def install(self) -> None:
        self._handle = optim_module.register_optimizer_step_post_hook(self._after_step)

    def remove(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def handles(self) -> list[tuple[str, dict, int]]:
        return [("optimizer step post-hook", optim_module._global_optimizer_post_hooks,
                 self._handle.id)]

    def after_backward(self) -> None:
        """Called by the tracer when a backward pass through the model ends."""
        params = [p for opt in list(self._optimizers) for group in opt.param_groups
                  for p in group["params"] if p.grad is not None]
        sample = self.steps < ALWAYS_MEASURED_STEPS or self._random.random() < SAMPLED_SHARE
        self._snapshot = (params, _total_norm([p.grad for p in params])) \
            if params and sample else None
        self._pending = True

    def _after_step(self, optimizer: torch.optim.Optimizer, args: object,
                    kwargs: object) -> None:
        first = optimizer not in self._optimizers
        self._optimizers.add(optimizer)
        if not self._pending:
            return
        self._pending = False
        self.steps += 1
        snapshot, self._snapshot = self._snapshot, None
        if snapshot is None and first:  # the optimizer was not known yet: not a sample
            self.steps -= 1
        if snapshot is None:
            return
        params, norm = snapshot
        self.measured += 1
        now = _total_norm([p.grad for p in params if p.grad is not None])
        if abs(now - norm) > RESCALE_TOLERANCE * max(norm, 1e-12):
            self.rescaled += 1

    def summary(self) -> dict[str, int]:
        return {"steps": self.steps, "measured": self.measured, "rescaled": self.rescaled}


class GradientRecord:
    """Every tensor that received a gradient at the end of a backward pass: the model's
    parameters, and whatever else an optimizer holds.
    """

    def __init__(self, clips: ClipMonitor, roots: dict[int, nn.Module]):
        self._clips = clips
        self._roots = roots
        self.trained: dict[int, tuple[int, tuple[int, ...]]] = {}  # id -> (numel, shape)
        self._known: set[int] = set()
        self._seen_roots = 0
        self._params: list[torch.Tensor] = []

    def after_backward(self) -> None:
        if len(self._roots) != self._seen_roots:  # cache the candidate tensors per root set
            self._seen_roots = len(self._roots)
            self._params = [p for m in self._roots.values() for p in m.parameters()]
        candidates = list(self._params)
        candidates += [p for opt in list(self._clips._optimizers) for group in opt.param_groups
                       for p in group["params"]]
        for param in candidates:
            key = id(param)
            if key not in self._known and param.grad is not None:
                self._known.add(key)
                self.trained[key] = (param.numel(), tuple(param.shape))

    def summary(self, model: nn.Module | None) -> dict[str, Any]:
        registered = {id(p) for p in model.parameters()} if model is not None else set()
        foreign = [v for k, v in self.trained.items() if k not in registered]
        return {"trained": sum(n for n, _ in self.trained.values()),
                "foreign": sum(n for n, _ in foreign),
                "foreign_shapes": [list(shape) for _, shape in foreign[:50]]}


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


NORMS = (nn.modules.batchnorm._BatchNorm,)  # InstanceNorm is per example in every mode
STOCHASTIC = (nn.modules.dropout._DropoutNd, nn.RNNBase, nn.MultiheadAttention)


def _batch_dependent(module: nn.Module) -> bool:
    """Does this layer behave differently with the rest of the batch (or at random), in
    its current mode? BatchNorm without running statistics always does.
    """
    if isinstance(module, NORMS):
        return module.training or not module.track_running_stats
    if isinstance(module, STOCHASTIC):
        return module.training and getattr(module, "p", getattr(module, "dropout", 0.0)) > 0
    return False


def _watchable(module: nn.Module) -> bool:
    return isinstance(module, NORMS + STOCHASTIC)


class ServingMonitor:
    """While entered: every normalisation or dropout layer that runs with batch statistics
    or in training mode, seen both by a global hook and by the layer's own ``forward``
    (so calling ``layer.forward(x)`` directly is seen too); and afterwards, the buffers
    serving changed (running statistics move only in training mode).
    """

    def __init__(self, model: nn.Module):
        self._model = model
        self._layers = [(f"{name or 'model'} ({type(m).__name__})", m)
                        for name, m in model.named_modules() if _watchable(m)]
        self._names = {id(m): label for label, m in self._layers}
        self.batch_dependent: dict[str, None] = {}
        self._buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
        self._handle: Any = None

    def __enter__(self) -> ServingMonitor:
        self._handle = nn_module.register_module_forward_pre_hook(self._pre)
        for label, layer in self._layers:
            layer.forward = self._wrapped(label, layer, layer.forward)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()
        for _, layer in self._layers:
            layer.__dict__.pop("forward", None)

    def _wrapped(self, label: str, layer: nn.Module, forward: Any) -> Any:
        def forward_watched(*args: Any, **kwargs: Any) -> Any:
            if _batch_dependent(layer):
                self.batch_dependent[label] = None
            return forward(*args, **kwargs)
        return forward_watched

    def _pre(self, module: nn.Module, args: tuple) -> None:
        if _batch_dependent(module):
            label = self._names.get(id(module), type(module).__name__)
            self.batch_dependent[label] = None

    def summary(self) -> dict[str, list[str]]:
        now = dict(self._model.named_buffers())
        changed = [name for name, before in self._buffers.items() if name in now
                   and not torch.equal(now[name].detach().cpu(), before.cpu())]
        return {"train_mode": list(self.batch_dependent), "buffers_changed": changed}


# -- the seal ---------------------------------------------------------------------------
HARNESS_MODULES = ("sandbox.harness.worker", "sandbox.harness.tracing",
                   "sandbox.harness.instruments", "sandbox.harness.run",
                   "sandbox.harness.protocol", "sandbox.harness.job", "sandbox.telemetry",
                   "sandbox.events", "sandbox.files", "sandbox.data", "sandbox.config")
TORCH_PARTS: tuple[tuple[Any, str], ...] = (
    (nn.Module, "__call__"), (nn.Module, "_call_impl"), (nn.Module, "_wrapped_call_impl"),
    (nn.Module, "parameters"), (nn.Module, "named_parameters"), (nn.Module, "named_modules"),
    (nn.Module, "named_buffers"), (nn.Module, "train"), (nn.Module, "eval"),
    (torch.Tensor, "backward"), (torch.Tensor, "register_hook"), (torch.autograd, "backward"),
    (torch.autograd, "grad"), (torch, "_foreach_norm"), (torch, "stack"), (torch, "cat"),
    (torch, "equal"), (torch, "from_numpy"), (torch, "no_grad"),
    (optim_module.Optimizer, "profile_hook_step"), (nn_module, "_global_forward_pre_hooks"),
    (nn_module, "_global_forward_hooks"), (nn_module, "_global_forward_hooks_always_called"),
    (optim_module, "_global_optimizer_pre_hooks"), (optim_module, "_global_optimizer_post_hooks"),
)


def _code_of(value: Any) -> Any:
    function = getattr(value, "__func__", value)
    return getattr(function, "__code__", None), getattr(function, "__defaults__", None)


def _current(owner: Any, attr: str) -> Any:
    namespace = vars(owner)
    return namespace[attr] if attr in namespace else getattr(owner, attr, None)


class Seal:
    """A record of the harness's functions and classes and of the torch parts it relies
    on, taken before the candidate's code runs; :meth:`broken` names what was rebound
    since (a replaced ``__code__`` counts).
    """

    def __init__(self) -> None:
        self._entries = [(label, owner, attr, value, _code_of(value))
                         for label, owner, attr, value in self._walk()]

    @staticmethod
    def _walk() -> Iterable[tuple[str, Any, str, Any]]:
        for name in HARNESS_MODULES:
            module = sys.modules.get(name)
            if module is None:
                continue
            for attr, value in list(vars(module).items()):
                if isinstance(value, types.FunctionType | type) and \
                        getattr(value, "__module__", None) == name:
                    yield f"{name}.{attr}", module, attr, value
                    if isinstance(value, type):
                        for member, inner in list(vars(value).items()):
                            yield f"{name}.{attr}.{member}", value, member, inner
        for owner, attr in TORCH_PARTS:
            yield f"{getattr(owner, '__name__', owner)}.{attr}", owner, attr, _current(owner, attr)

    def broken(self) -> list[str]:
        return [label for label, owner, attr, value, code in self._entries
                if _current(owner, attr) is not value or _code_of(value) != code]
