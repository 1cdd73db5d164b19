"""Gradient and activation telemetry that is cheap enough to leave on.

Scalars go through :class:`sandbox.events.EventWriter` (buffered, C CRC32C). Gradient
telemetry runs on a schedule from global optimizer hooks, so it needs nothing from the
pipeline beyond ``run.watch(model)`` for layer names.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from .events import EventWriter

__all__ = ["ActivationWatcher", "EventWriter", "GradientWatcher", "Telemetry",
           "companion_batches", "due", "layer_name", "layer_names", "module_kind",
           "module_names", "parameter_name", "read_scalars"]


# What a module is called in a tag when its path says only where it sits in a container
# (a ``Sequential`` index): its kind, numbered among its siblings of that kind. The first
# class a module is an instance of wins (a ConvTranspose is a conv, but "deconv" first).
KINDS: tuple[tuple[type, str], ...] = (
    (torch.nn.Linear, "fc"), (torch.nn.Bilinear, "bilinear"),
    (torch.nn.modules.conv._ConvTransposeNd, "deconv"), (torch.nn.modules.conv._ConvNd, "conv"),
    (torch.nn.modules.batchnorm._BatchNorm, "bn"), (torch.nn.LayerNorm, "ln"),
    (torch.nn.GroupNorm, "gn"), (torch.nn.modules.instancenorm._InstanceNorm, "inorm"),
    *(((torch.nn.RMSNorm, "rms"),) if hasattr(torch.nn, "RMSNorm") else ()),  # torch 2.4+
    (torch.nn.EmbeddingBag, "embbag"), (torch.nn.Embedding, "emb"),
    (torch.nn.LSTM, "lstm"), (torch.nn.GRU, "gru"), (torch.nn.RNN, "rnn"),
    (torch.nn.LSTMCell, "lstmcell"), (torch.nn.GRUCell, "grucell"),
    (torch.nn.RNNCell, "rnncell"), (torch.nn.MultiheadAttention, "attn"),
    (torch.nn.TransformerEncoderLayer, "encoder_layer"),
    (torch.nn.TransformerDecoderLayer, "decoder_layer"),
    (torch.nn.TransformerEncoder, "encoder"), (torch.nn.TransformerDecoder, "decoder"),
    (torch.nn.Transformer, "transformer"),
    (torch.nn.Sequential, "block"), (torch.nn.ModuleList, "block"),
    (torch.nn.ModuleDict, "block"), (torch.nn.ReLU, "relu"), (torch.nn.ReLU6, "relu6"),
    (torch.nn.LeakyReLU, "leaky_relu"), (torch.nn.PReLU, "prelu"), (torch.nn.RReLU, "rrelu"),
    (torch.nn.GELU, "gelu"), (torch.nn.SiLU, "silu"), (torch.nn.ELU, "elu"),
    (torch.nn.SELU, "selu"), (torch.nn.CELU, "celu"), (torch.nn.Tanh, "tanh"),
    (torch.nn.Sigmoid, "sigmoid"), (torch.nn.Softmax, "softmax"),
    (torch.nn.modules.pooling._MaxPoolNd, "maxpool"),
    (torch.nn.modules.pooling._AvgPoolNd, "avgpool"),
    (torch.nn.modules.dropout._DropoutNd, "dropout"),
)


def module_kind(module: torch.nn.Module) -> str:
    """``fc``, ``conv``, ``bn``, ``lstm``...; any other class by its own name in snake
    case (``ResidualBlock`` -> ``residual_block``, ``MaxUnpool2d`` -> ``max_unpool2d``).
    """
    for cls, kind in KINDS:
        if isinstance(module, cls):
            return kind
    name = type(module).__name__
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    return re.sub(r"[^a-z0-9_]", "_", snake) or "module"


def module_names(model: torch.nn.Module) -> dict[str, str]:
    """Each module path of ``model`` (as ``named_modules`` gives it) -> the name its tags
    use: a numeric component (a ``Sequential`` or ``ModuleList`` index) becomes the
    module's kind and its ordinal among the same kind of siblings (``net.0`` -> ``net.fc1``,
    ``net.3`` -> ``net.fc2``, ``1.0`` -> ``block2.conv1``); named submodules keep their
    names (``encoder.fc1``). Unique among siblings, and the same for every model of
    the same structure. The model itself is ``""``.
    """
    names = {"": ""}
    seen = {id(model)}
    stack = [(model, "", "")]
    while stack:
        module, path, shown = stack.pop()
        children = list(module.named_children())
        taken = {name for name, _ in children if not name.isdigit()}
        counts: dict[str, int] = {}
        placed = []
        for name, child in children:
            label = name
            if name.isdigit():
                kind = module_kind(child)
                counts[kind] = counts.get(kind, 0) + 1
                label = f"{kind}{'_' if kind[-1].isdigit() else ''}{counts[kind]}"
                if label in taken:  # a sibling is already called that: keep the index too
                    label = f"{label}_{name}"
                taken.add(label)
            child_path = f"{path}.{name}" if path else name
            names[child_path] = f"{shown}.{label}" if shown else label
            if id(child) not in seen:  # a shared module is named where it is first met
                seen.add(id(child))
                placed.append((child, child_path, names[child_path]))
        stack.extend(reversed(placed))
    return names


def root_name(model: torch.nn.Module) -> str:
    """What a parameter held by the model itself is tagged under: nothing for a model
    class of its own (its parameters keep their names), the kind for a bare torch layer
    (a lone ``nn.Linear`` is ``fc``, a lone ``nn.LSTM``'s weights ``lstm.weight_hh_l0``).
    """
    return module_kind(model) if type(model).__module__.startswith("torch.nn") else ""


def parameter_name(name: str, modules: dict[str, str], root: str = "") -> str:
    """A parameter's name with its module path renamed by :func:`module_names`
    (``net.0.weight`` -> ``net.fc1.weight``).
    """
    path, _, attr = name.rpartition(".")
    shown = modules.get(path, path) if path else root
    return f"{shown}.{attr}" if shown else attr


def layer_name(name: str, modules: dict[str, str] | None = None, root: str = "") -> str:
    """A weight's tag: its layer for a layer's plain weight (``net.0.weight`` ->
    ``net.fc1`` with the model's :func:`module_names`, ``net.0`` without), its whole name
    otherwise (``lstm.weight_ih_l0`` and ``lstm.weight_hh_l0``,
    ``self_attn.in_proj_weight``), so no two weights share a tag. A custom model's own
    ``weight`` is ``weight``.
    """
    full = parameter_name(name, modules or {}, root)
    return full.removesuffix(".weight") if "." in full else full


def layer_names(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """``(tag, parameter)`` for each weight (ndim > 1) of ``model``, in parameter order."""
    modules, root = module_names(model), root_name(model)
    return [(layer_name(name, modules, root), param)
            for name, param in model.named_parameters() if param.ndim > 1]


def companion_batches(i: int, n: int, size: int) -> tuple[list[int], list[int]]:
    """Two batches of ``size`` rows out of ``n`` that share only row ``i``: its neighbours
    after it, and rows from the far end. A model that is a fixed function of each input
    predicts row ``i`` the same in both (the batch-dependence probe).
    """
    return ([i, *((i + 1 + k) % n for k in range(size - 1))],
            [i, *((n - 1 - i - k) % n for k in range(size - 1))])


def due(step: int, cadence: int) -> bool:
    """Gradient telemetry at steps 1, 2, 4, 8, ... and every ``cadence`` steps: dense where
    explosions and vanishing show (the first steps), sparse once training is steady.
    """
    return step % cadence == 0 or step & (step - 1) == 0


class GradientWatcher:
    """Per-layer gradient norms, update/weight ratios and the learning rate at the steps
    :func:`due` picks; and the exact count of optimizer steps (the budget).
    """

    def __init__(self, writer: EventWriter, cadence: int, only_watched: bool = False):
        self.writer = writer
        self.cadence = cadence
        self.only_watched = only_watched
        self.after_step: Callable[[], None] | None = None
        self.before_step: Callable[[int], None] | None = None  # may raise to stop
        self.steps = 0
        self._watched_optimizers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.names: dict[int, str] = {}
        self._before: dict[int, torch.Tensor] = {}
        self._watched: list[tuple[str, weakref.ref]] = []
        self._still: list[tuple[str, torch.Tensor]] = []
        self._peak: torch.Tensor | None = None
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def watch(self, model: torch.nn.Module) -> None:
        for name, param in layer_names(model):
            self.names[id(param)] = name
            self._watched.append((name, weakref.ref(param)))

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

    def handles(self) -> list[tuple[str, dict, int]]:
        """Where the step hooks live: the harness checks they were not removed."""
        from torch.optim import optimizer
        pre, post = self._handles
        return [("optimizer step pre-hook", optimizer._global_optimizer_pre_hooks, pre.id),
                ("optimizer step post-hook", optimizer._global_optimizer_post_hooks, post.id)]

    def _layers(self, optimizer: torch.optim.Optimizer) -> Iterable[tuple[str, torch.Tensor]]:
        params = [p for group in optimizer.param_groups for p in group["params"] if p.ndim > 1]
        for index, param in enumerate(params):
            yield self.names.get(id(param), f"param{index}"), param

    def _watches(self, optimizer: torch.optim.Optimizer) -> bool:
        """The hooks are global; a probe in someone's loop counts only their model's steps."""
        if not self.only_watched:
            return True
        known = self._watched_optimizers.get(optimizer)
        if known is None:
            known = self._watched_optimizers[optimizer] = any(
                id(p) in self.names for group in optimizer.param_groups for p in group["params"])
        return known

    def _pre(self, optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        """At a due step: per-layer gradient norms, and a copy of the weights for the
        update ratio. ``torch._foreach_*`` does each in one call for all layers (the
        way ``clip_grad_norm_`` does): small models pay per call, not per element.
        """
        if not self._watches(optimizer):
            return
        self.steps += 1
        if self.before_step is not None:
            self.before_step(self.steps)
        total = self._track_peak(optimizer)
        if not due(self.steps, self.cadence):
            return
        step = self.steps
        self.writer.add("lr", float(optimizer.param_groups[0]["lr"]), step)
        if total is not None:
            self.writer.add("grad_norm/global", float(total), step)
            self.writer.add("grad_norm/global_max", float(self._peak), step)
            self._peak = None
        layers = [(name, p) for name, p in self._layers(optimizer) if p.grad is not None]
        self._still = self._not_stepped(layers)
        if not layers and not self._still:
            return
        snapshot = layers + self._still
        with torch.no_grad():
            self._before = {id(p): copy for (_, p), copy in
                            zip(snapshot, torch._foreach_mul([p.detach() for _, p in snapshot],
                                                             1.0), strict=True)}
            if not layers:
                return
            norms = torch.stack(torch._foreach_norm([p.grad for _, p in layers]))
        for (name, _), norm in zip(layers, norms.tolist(), strict=True):
            self.writer.add(f"grad_norm/{name}", norm, step)

    def _track_peak(self, optimizer: torch.optim.Optimizer) -> torch.Tensor | None:
        """Every step: the global gradient norm over every parameter (biases and norms'
        1-D weights included), and its running maximum since the last logged step, kept
        on the device (no sync): a burst between two logged steps is never lost.
        """
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]
                 if p.grad is not None]
        if not grads:
            return None
        with torch.no_grad():
            total = torch.stack(torch._foreach_norm(grads)).square().sum().sqrt()
            self._peak = total if self._peak is None else torch.maximum(self._peak, total)
        return total

    def _not_stepped(self, layers: list[tuple[str, torch.Tensor]]
                     ) -> list[tuple[str, torch.Tensor]]:
        """The watched model's layers this step cannot move: not in the optimizer (it was
        built over another model's parameters) or frozen. Their update ratio is logged as
        what it is, zero, so weights that never change show in the log.
        """
        stepped = {id(p) for _, p in layers}
        still = []
        for name, ref in self._watched:
            param = ref()
            if param is not None and id(param) not in stepped:
                still.append((name, param))
        return still

    def _post(self, optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        if self.after_step is not None and self._watches(optimizer):
            self.after_step()
        if not self._before:
            return
        layers = [(name, p) for name, p in self._layers(optimizer) if id(p) in self._before]
        held = {id(p) for _, p in layers}
        layers += [(name, p) for name, p in self._still if id(p) not in held]
        self._still = []
        befores = [self._before[id(p)] for _, p in layers]
        with torch.no_grad():
            moved = torch._foreach_norm(torch._foreach_sub([p.detach() for _, p in layers],
                                                           befores))
            sizes = torch._foreach_norm(befores)
            ratios = (torch.stack(moved) / (torch.stack(sizes) + 1e-12)).tolist()
        for (name, _), ratio in zip(layers, ratios, strict=True):
            self.writer.add(f"update_ratio/{name}", ratio, self.steps)
        self._before = {}


DEAD_UNIT_MODULES = (torch.nn.ReLU, torch.nn.ReLU6)


def _unit_dims(out: torch.Tensor) -> tuple[int, ...]:
    """Dimensions to reduce so one value is left per unit: features of ``(N, F)`` and of
    ``(N, T, F)`` sequences, channels of ``(N, C, H, W)`` and deeper feature maps.
    """
    if out.ndim == 3:
        return (0, 1)
    return tuple(d for d in range(out.ndim) if d != 1)


class ActivationWatcher:
    """The fraction of each ReLU layer's units that output zero for every input of a
    training batch (``dead_units/<layer>``), measured on the first forward pass of the
    optimizer steps :func:`due` picks. A unit that is zero for a whole batch gets no
    gradient from it; one that stays so is dead (AUTOTRAINER's dying-ReLU problem).

    A forward hook costs every call of its module, so hooks are armed only before a due
    step and each removes itself once it has measured. Only ``nn.ReLU`` modules can be
    watched: ``F.relu`` inside ``forward`` has no hook.
    """

    def __init__(self, writer: EventWriter, cadence: int, steps: GradientWatcher):
        self.writer = writer
        self.cadence = cadence
        self._steps = steps
        self._modules: dict[str, torch.nn.Module] = {}
        self._armed: dict[str, torch.utils.hooks.RemovableHandle] = {}

    def watch(self, model: torch.nn.Module) -> None:
        names, root = module_names(model), root_name(model)
        for path, module in model.named_modules():
            if isinstance(module, DEAD_UNIT_MODULES):
                self._modules[names.get(path, path) or root or "relu"] = module
        self.arm()

    def arm(self) -> None:
        """Measure on the next training forward pass (the step after the current one)."""
        if not due(self._steps.steps + 1, self.cadence):
            return
        for name, module in self._modules.items():
            if name not in self._armed:
                self._armed[name] = module.register_forward_hook(self._hook(name))

    def _hook(self, name: str):
        def record(module: torch.nn.Module, args: object, out: torch.Tensor) -> None:
            if not module.training or not isinstance(out, torch.Tensor) or out.ndim < 2:
                return  # evaluation passes are not training telemetry; stay armed
            self._armed.pop(name).remove()
            with torch.no_grad():
                silent = out.detach().amax(dim=_unit_dims(out)) <= 0
            self.writer.add(f"dead_units/{name}", float(silent.float().mean()),
                            self._steps.steps + 1)  # this pass feeds the next step
        return record

    def remove(self) -> None:
        for handle in self._armed.values():
            handle.remove()
        self._armed.clear()
        self._modules.clear()


class Telemetry:
    """Everything written besides the pipeline's own scalars: gradient norms, update
    ratios, the learning rate and dead ReLU units, from hooks, at one cadence.
    """

    def __init__(self, writer: EventWriter, cadence: int, only_watched: bool = False):
        self.writer = writer
        self.gradients = GradientWatcher(writer, cadence, only_watched)
        self.activations = ActivationWatcher(writer, cadence, self.gradients)
        self.gradients.after_step = self.activations.arm

    @property
    def steps(self) -> int:
        """Optimizer steps taken so far (the budget the harness enforces)."""
        return self.gradients.steps

    def watch(self, model: torch.nn.Module) -> None:
        self.gradients.watch(model)
        self.activations.watch(model)

    def install(self) -> None:
        self.gradients.install()

    def handles(self) -> list[tuple[str, dict, int]]:
        return self.gradients.handles()

    def remove(self) -> None:
        self.gradients.remove()
        self.activations.remove()


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in a run folder, read with tensorboard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator
    accumulator = EventAccumulator(str(run_dir), size_guidance={SCALARS: 0})
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}
