"""Small training loops on the UCI digits, healthy and broken, each with a Probe in it.

The diagnoser's benchmark runs every case on three seeds and counts which findings it
names; each case says which symptom it must show (``expect``) and which findings it may
show besides (``allow``): a healthy case expects and allows nothing.

    python benchmarks/probe_zoo.py OUT_DIR      # writes OUT_DIR/<case>/seed<N>/
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sandbox import data
from sandbox.probe import Probe


@dataclass(frozen=True)
class Case:
    name: str
    loop: Callable[[int, Path], None]
    expect: frozenset[str]
    allow: frozenset[str] = frozenset()


def digits(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    dev = data.development({"name": "digits"}, seed)
    x, y = torch.from_numpy(dev.x).flatten(1) / 16.0, torch.from_numpy(dev.y)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    val, train = order[:300], order[300:]
    return x[train], y[train], x[val], y[val]


def mlp(hidden: int = 64, batchnorm: bool = False) -> nn.Sequential:
    norm = [nn.BatchNorm1d(hidden)] if batchnorm else []
    return nn.Sequential(nn.Linear(64, hidden), *norm, nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def fit(seed: int, out: Path, *, epochs: int, batch_size: int, lr: float, momentum: float = 0.0,
        adam: bool = False, shuffle: bool = True, step_lr: int | None = None,
        model: nn.Module | None = None, train_size: int | None = None,
        serve_in_train_mode: bool = False, milestones: list[int] | None = None,
        ascend: bool = False) -> None:
    torch.manual_seed(seed)
    x, y, xv, yv = digits(seed)
    if train_size:
        x, y = x[:train_size], y[:train_size]
    if not shuffle:  # sorted by class, as the files came
        order = y.argsort(stable=True)
        x, y = x[order], y[order]
    model = model or mlp()
    optimizer = (torch.optim.Adam(model.parameters(), lr=lr) if adam else
                 torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum))
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_lr) if step_lr else None
    if milestones:  # meant as epochs, stepped every batch below
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    with Probe(out) as probe:
        probe.watch(model)
        step = 0
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(y)) if shuffle else torch.arange(len(y))
            for batch in order.split(batch_size):
                loss = F.cross_entropy(model(x[batch]), y[batch])
                optimizer.zero_grad()
                if ascend:  # "maximise the probability of the right class", minimised
                    F.softmax(model(x[batch]), 1).gather(1, y[batch, None]).mean().backward()
                else:
                    loss.backward()
                optimizer.step()
                step += 1
                probe.log("Loss/train", loss.item(), step)
                if schedule:
                    schedule.step()
            if not serve_in_train_mode:
                model.eval()
            with torch.no_grad():
                logits = model(xv)
                probe.log("Loss/val", F.cross_entropy(logits, yv).item(), step)
                probe.log("Accuracy/val", (logits.argmax(1) == yv).float().mean().item(), step)
        probe.check_batch_dependence(model, xv, step)


def dying(seed: int, out: Path) -> None:
    model = mlp()
    with torch.no_grad():
        model[0].bias.fill_(-4.0)  # every first-layer unit starts below zero for every input
    fit(seed, out, epochs=5, batch_size=32, lr=0.05, model=model)


def frozen_backbone(seed: int, out: Path) -> None:
    """Fine-tuning code that froze the feature layers and never unfroze them."""
    torch.manual_seed(seed)
    model = mlp()
    for layer in (model[0], model[2]):
        layer.requires_grad_(False)
    fit(seed, out, epochs=4, batch_size=32, lr=0.05, momentum=0.9, model=model)


CASES = [
    Case("healthy-adam", lambda s, o: fit(s, o, epochs=10, batch_size=64, lr=1e-3, adam=True),
         frozenset()),
    Case("healthy-small-batch", lambda s, o: fit(s, o, epochs=2, batch_size=4, lr=0.01),
         frozenset()),
    Case("healthy-step-lr", lambda s, o: fit(s, o, epochs=12, batch_size=32, lr=0.1,
                                             momentum=0.9, step_lr=180), frozenset()),
    Case("healthy-batchnorm", lambda s, o: fit(s, o, epochs=8, batch_size=32, lr=0.05,
                                               momentum=0.9, model=mlp(batchnorm=True)),
         frozenset()),
    # Sorted data: each epoch ends on the last class, so on some seeds the validation
    # accuracy sits at that class's share at every evaluation (a flat metric, truly).
    Case("unshuffled", lambda s, o: fit(s, o, epochs=6, batch_size=16, lr=0.05,
                                        shuffle=False), frozenset({"oscillating"}),
         frozenset({"flat-validation-metric"})),
    Case("lr-too-low", lambda s, o: fit(s, o, epochs=5, batch_size=32, lr=1e-5),
         frozenset({"not-learning", "small-updates"})),
    Case("milestones-per-batch", lambda s, o: fit(s, o, epochs=6, batch_size=32, lr=0.05,
                                                  milestones=[3, 6]),
         frozenset({"lr-collapse"}), frozenset({"not-learning", "small-updates"})),
    Case("frozen-backbone", frozen_backbone, frozenset({"frozen-weights"})),
    Case("objective-ascent", lambda s, o: fit(s, o, epochs=3, batch_size=32, lr=0.1,
                                              momentum=0.9, ascend=True),
         frozenset({"rising-loss"}), frozenset({"diverging", "exploding-gradients",
                                                "large-updates"})),
    Case("lr-spike-kills-relus", lambda s, o: fit(s, o, epochs=5, batch_size=32, lr=3.0,
                                                  momentum=0.9),
         frozenset({"dead-units"}), frozenset({"not-learning", "exploding-gradients",
                                               "large-updates", "large-early-updates",
                                               "diverging", "collapsed"})),
    Case("dying-relu", dying, frozenset({"dead-units"}),
         frozenset({"not-learning", "vanishing-gradients"})),
    Case("overfit-small-data", lambda s, o: fit(s, o, epochs=150, batch_size=32, lr=3e-3,
                                                adam=True, model=mlp(512), train_size=64),
         frozenset({"overfitting"})),
    Case("batchnorm-train-mode-eval",
         lambda s, o: fit(s, o, epochs=8, batch_size=32, lr=0.05, momentum=0.9,
                          model=mlp(batchnorm=True), serve_in_train_mode=True),
         frozenset({"eval-batch-dependence"})),
]


def run_all(out: Path, seeds: range = range(3)) -> None:
    torch.set_num_threads(1)
    for case in CASES:
        for seed in seeds:
            case.loop(seed, out / case.name / f"seed{seed}")


if __name__ == "__main__":
    run_all(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/zoo"))
