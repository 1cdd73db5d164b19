"""What the harness measures inside the candidate's process besides the data's path.

- :class:`ClipMonitor`: on how many optimizer steps the gradient the optimizer used
  differs from the one ``backward()`` produced (clipping by any name, in the loop or in
  an overridden ``step``). The Tuning Playbook's rule of thumb: clipping that acts on most
  steps is a smaller learning rate in disguise.
- :class:`GradientRecord`: which tensors training changes, in the model or not (the
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

from ..telemetry import module_names, parameter_name, root_name

RESCALE_TOLERANCE = 1e-3  # relative change of the global gradient norm counted as rescaling
ALWAYS_MEASURED_STEPS = 16  # the first steps are all compared; after that a random share
SAMPLED_SHARE = 0.25  # (drawn from the OS, so the candidate cannot know which)


def _norms(tensors: list[torch.Tensor]) -> torch.Tensor:
    if not tensors:
        return torch.zeros(0)
    return torch.stack(torch._foreach_norm(tensors)).cpu()


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-for-bit unchanged, NaN included (NaN != NaN, yet a NaN weight left alone has
    not been updated).
    """
    return a.shape == b.shape and bool(((a == b) | (a.isnan() & b.isnan())).all())


class ClipMonitor:
    """Compares, per parameter, the gradient after the optimizer step with the one
    ``backward()`` produced (norms, not in-place version counters: a change made through
    ``.data``, inside an overridden ``step()`` or moved onto another tensor shows), and
    whether the weights changed between a step and the next backward pass, where no
    optimizer works (an update rescaled by hand after the step).
    """

    def __init__(self) -> None:
        self.steps = 0  # steps that followed a backward pass the tracer saw
        self.measured = 0
        self.rescaled = 0
        self.outside = 0  # compared steps after which the weights changed outside the optimizer
        self._optimizers: weakref.WeakSet = weakref.WeakSet()
        self._snapshot: tuple[list[torch.Tensor], torch.Tensor] | None = None
        self._weights: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._pending = False  # a backward pass ended and no step has followed it yet
        self._accumulates = False  # some backward pass was followed by another, no step
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

    def _params(self) -> list[torch.Tensor]:
        return [p for opt in list(self._optimizers) for group in opt.param_groups
                for p in group["params"]]

    def after_backward(self) -> None:
        """Called by the tracer when a backward pass through the model ends. The weights
        were copied after the last step, or after the last backward pass when no step
        followed it (gradient accumulation): either way no optimizer ran since, so they
        must not have changed. The copy at a backward pass is only made once the loop has
        shown it accumulates (two backward passes with no step between): a loop that steps
        after every backward pass would throw it away at the step.
        """
        self._accumulates = self._accumulates or self._pending
        if self._weights:
            if any(not _same(p.detach(), before) for p, before in self._weights):
                self.outside += 1
            self._weights = []
        params = [p for p in self._params() if p.grad is not None]
        sample = self.steps < ALWAYS_MEASURED_STEPS or self._random.random() < SAMPLED_SHARE
        self._snapshot = (params, _norms([p.grad for p in params])) if params and sample \
            else None
        if sample and self._accumulates:
            self._weights = [(p, p.detach().clone()) for p in self._params()]
        self._pending = True

    def _after_step(self, optimizer: torch.optim.Optimizer, args: object,
                    kwargs: object) -> None:
        known = optimizer in self._optimizers
        self._optimizers.add(optimizer)
        self._weights = []  # an optimizer ran: the weights may change
        if not self._pending:
            return
        self._pending = False
        snapshot, self._snapshot = self._snapshot, None
        if snapshot is None and not known:  # the optimizer was not known yet: no sample
            return
        self.steps += 1
        if snapshot is None:
            return
        params, before = snapshot
        now = _norms([p.grad if p.grad is not None else torch.zeros(()) for p in params])
        self.measured += 1
        if bool(((now - before).abs() > RESCALE_TOLERANCE * before.clamp_min(1e-12)).any()):
            self.rescaled += 1
        self._weights = [(p, p.detach().clone()) for p in self._params()]

    def summary(self) -> dict[str, int]:
        return {"steps": self.steps, "measured": self.measured, "rescaled": self.rescaled,
                "outside": self.outside}


class GradientRecord:
    """The tensors that training really changes: leaves of the autograd graph below the
    model's outputs that persist from one backward pass to the next (weights, not a
    batch of inputs) and whose gradient is not zero, registered in the model or not (a
    side network kept in plain tensors counts; a layer multiplied by zero, or never run,
    does not). Walked on sampled backward passes.
    """

    def __init__(self) -> None:
        self.trained: dict[int, tuple[int, tuple[int, ...]]] = {}  # id -> (numel, shape)
        self._seen: dict[int, list[Any]] = {}  # id -> [weakref, sightings, gradient seen]
        self._random = random.Random(os.urandom(16))
        self.walks = 0

    def wants(self) -> bool:
        """Walk this backward pass? The first ones, then a random share."""
        return self.walks < ALWAYS_MEASURED_STEPS or self._random.random() < SAMPLED_SHARE

    def walk(self, roots: list[Any]) -> None:
        """Record the leaves below these ``grad_fn`` nodes (after their backward pass)."""
        self.walks += 1
        seen, stack = set(), [r for r in roots if r is not None]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            leaf = getattr(node, "variable", None)
            if isinstance(leaf, torch.Tensor):
                self._note(leaf)
            stack.extend(n for n, _ in getattr(node, "next_functions", ()) if n is not None)

    def _note(self, leaf: torch.Tensor) -> None:
        key = id(leaf)
        entry = self._seen.get(key)
        if entry is None or entry[0]() is not leaf:  # a new tensor (ids are reused)
            entry = self._seen[key] = [weakref.ref(leaf, self._forget(key)), 0, False]
        entry[1] += 1
        grad = leaf.grad
        entry[2] = entry[2] or grad is None or bool(grad.detach().ne(0).any())  # None:
        if entry[1] >= 2 and entry[2]:  # torch.autograd.grad, no .grad to look at
            self.trained[key] = (leaf.numel(), tuple(leaf.shape))

    def _forget(self, key: int) -> Any:
        return lambda ref: self._seen.pop(key, None)  # runs as the tensor dies, before its
        # id can be reused

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
        names, root = None, root_name(model)
        for name, param in model.named_parameters():
            if param._backward_hooks or getattr(param, "_post_accumulate_grad_hooks", None):
                names = names or module_names(model)  # named as the telemetry names them
                found.append(f"parameter {parameter_name(name, names, root) or '?'}")
        for name, module in model.named_modules():
            if module._backward_hooks or module._backward_pre_hooks:
                names = names or module_names(model)
                found.append(f"module {names.get(name) or type(module).__name__}")
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


class ModeRecord:
    """Dropout and BatchNorm layers of the trained model found in eval mode when a
    backward pass through it ends: a loop that left the model in ``eval()`` after
    validating trains without dropout and with BatchNorm frozen on stale statistics.
    """

    def __init__(self, tracer: Any) -> None:
        self._tracer = tracer  # its backward_modules: the models this pass trained
        self.passes = 0
        self.in_eval = 0
        self.layers: list[str] = []
        self._seen: set[tuple[int, str]] = set()  # (root, path) pairs already named

    def after_backward(self) -> None:
        self.passes += 1
        frozen = [(root, name) for root in self._tracer.backward_modules
                  for name, layer in root.named_modules()
                  if isinstance(layer, MODE_LAYERS) and not layer.training]
        if frozen:
            self.in_eval += 1
            new = [(root, name) for root, name in frozen if (id(root), name) not in self._seen]
            if new and len(self.layers) < 10:  # named as the telemetry names them
                self._seen.update((id(root), name) for root, name in new)
                roots = {id(root): root for root, _ in new}
                names = {key: module_names(root) for key, root in roots.items()}
                shown = [names[id(root)].get(name) or type(root).__name__ for root, name in new]
                self.layers += [n for n in dict.fromkeys(shown)
                                if n not in self.layers][:10 - len(self.layers)]

    def summary(self) -> dict[str, Any]:
        return {"passes": self.passes, "in_eval": self.in_eval, "layers": self.layers}


MODE_LAYERS = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)


class ServingMonitor:
    """While entered: every normalisation or dropout layer that runs with batch statistics
    or in training mode, seen both by a global hook and by the layer's own ``forward``
    (so calling ``layer.forward(x)`` directly is seen too); and afterwards, the buffers
    serving changed (running statistics move only in training mode).
    """

    def __init__(self, model: nn.Module):
        self._model = model
        names = module_names(model)  # as the telemetry names them: net.bn1, not net.1
        self._layers = [(f"{names.get(name) or 'model'} ({type(m).__name__})", m)
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
