"""The diagnoser's labelled corpus: real training runs, logged the ways people log them.

Four loggers, each with the tag names its users get:

- ``lightning``: PyTorch Lightning's TensorBoardLogger (``train_loss_step``,
  ``train_loss_epoch``, ``val_loss``, ``lr-SGD`` from LearningRateMonitor,
  ``grad_2.0_norm/...`` from ``lightning.pytorch.utilities.grad_norm``);
- ``torch``: ``torch.utils.tensorboard.SummaryWriter`` in the styles of tutorials
  (``Loss/train``, ``add_scalars``, per-epoch logging);
- ``tbx``: tensorboardX's SummaryWriter with Hugging Face Trainer tags (``train/loss``,
  ``eval/loss``, ``train/learning_rate``, ``train/grad_norm``, every ``logging_steps``);
- ``probe``: a plain loop with :class:`sandbox.probe.Probe` (gradient, update and
  activation telemetry).

Each run says what was *planted* in it (the bug, or none). That is not its label: the
labels in ``labels.json`` were written from the curves (``sheet.py`` draws them) before
the diagnoser was run, and a planted bug that does not show is labelled as what shows.

    pip install -e '.[corpus]'          # lightning and tensorboardX, next to the same torch
    python benchmarks/corpus/make_corpus.py benchmarks/corpus/runs [NAME ...]
"""

from __future__ import annotations

import logging
import math
import shutil
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sandbox import data

warnings.filterwarnings("ignore")
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
logging.getLogger("lightning.fabric").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Run:
    name: str
    logger: str
    planted: str  # what the code does wrong, in words; "" for a healthy run
    make: Callable[[Path], None]


RUNS: dict[str, Run] = {}


def run(logger: str, planted: str = ""):
    def register(make: Callable[[Path], None]) -> Callable[[Path], None]:
        name = make.__name__.replace("_", "-")
        RUNS[name] = Run(name, logger, planted, make)
        return make
    return register


# ---------------------------------------------------------------- data

def digits(seed: int = 0, flat: bool = True):
    dev = data.development({"name": "digits"}, seed)
    x = torch.from_numpy(dev.x).float() / 16.0
    x = x.flatten(1) if flat else x.reshape(-1, 1, 8, 8)
    y = torch.from_numpy(dev.y).long()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    val, train = order[:300], order[300:]
    return x[train], y[train], x[val], y[val]


def sequences(n: int = 2000, length: int = 20, vocab: int = 8, seed: int = 0):
    """Does token 1 occur more often than token 2? Order-free, so every model can learn it."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab, (n, length), generator=g)
    y = ((x == 1).sum(1) > (x == 2).sum(1)).long()
    return x[:1600], y[:1600], x[1600:], y[1600:]


def first_token(n: int = 1200, length: int = 60, vocab: int = 4, seed: int = 0):
    """The label is the first token: the gradient has to travel the whole sequence."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab, (n, length), generator=g)
    return x[:1000], x[:1000, 0].clone(), x[1000:], x[1000:, 0].clone()


def regression(n: int = 1500, dim: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    y = torch.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] + 0.1 * torch.randn(n, generator=g)
    return x[:1200], y[:1200], x[1200:], y[1200:]


def mlp(inputs: int = 64, hidden: int = 64, classes: int = 10, depth: int = 2,
        act: type[nn.Module] = nn.ReLU, dropout: float = 0.0, bn: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = inputs
    for _ in range(depth):
        layers += [nn.Linear(width, hidden)] + ([nn.BatchNorm1d(hidden)] if bn else []) + [act()]
        layers += [nn.Dropout(dropout)] if dropout else []
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, classes))


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.conv2, self.bn2 = nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.head = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.head(x.flatten(1))


class TinyTransformer(nn.Module):
    def __init__(self, vocab: int = 8, d: int = 32, layers: int = 2, classes: int = 2,
                 norm_first: bool = True) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(0.02 * torch.randn(64, d))
        block = nn.TransformerEncoderLayer(d, 4, 64, dropout=0.0, batch_first=True,
                                           norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(x) + self.pos[: x.shape[1]])
        return self.head(h.mean(1))


class Recurrent(nn.Module):
    def __init__(self, kind: str = "lstm", vocab: int = 8, hidden: int = 32,
                 classes: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 16)
        self.rnn = (nn.LSTM if kind == "lstm" else nn.RNN)(16, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embed(x))
        return self.head(out[:, -1])


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return (logits.argmax(1) == y).float().mean().item()


def batches(n: int, size: int, shuffle: bool = True) -> list[torch.Tensor]:
    order = torch.randperm(n) if shuffle else torch.arange(n)
    return list(order.split(size))


# ---------------------------------------------------------------- Lightning

def lightning_fit(out: Path, module, train, val, epochs: int, batch_size: int,
                  lr_monitor: bool = False, shuffle: bool = True) -> None:
    import lightning as L
    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.loggers import TensorBoardLogger
    from torch.utils.data import DataLoader, TensorDataset

    logger = TensorBoardLogger(str(out.parent), name=out.name, version="")
    trainer = L.Trainer(max_epochs=epochs, logger=logger, accelerator="cpu", devices=1,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, log_every_n_steps=1,
                        num_sanity_val_steps=0,
                        callbacks=[LearningRateMonitor("step")] if lr_monitor else [])
    trainer.fit(module, DataLoader(TensorDataset(*train), batch_size=batch_size,
                                   shuffle=shuffle),
                DataLoader(TensorDataset(*val), batch_size=512))


def lightning_module(model: nn.Module, optimizer: Callable, scheduler: Callable | None = None,
                     interval: str = "epoch", log_grad_norm: bool = False,
                     loss_fn: Callable = F.cross_entropy, metric: bool = True):
    import lightning as L

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def training_step(self, batch, _):
            x, y = batch
            loss = loss_fn(self.model(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            logits = self.model(x)
            self.log("val_loss", loss_fn(logits, y))
            if metric:
                self.log("val_acc", accuracy(logits, y))

        def on_before_optimizer_step(self, optimizer):
            if log_grad_norm:
                from lightning.pytorch.utilities import grad_norm
                self.log_dict(grad_norm(self, norm_type=2))

        def configure_optimizers(self):
            opt = optimizer(self.parameters())
            if scheduler is None:
                return opt
            return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler(opt),
                                                       "interval": interval}}

    return Module()


@run("lightning")
def lightning_mlp_adam(out: Path) -> None:
    torch.manual_seed(0)
    x, y, xv, yv = digits(0)
    lightning_fit(out, lightning_module(mlp(), lambda p: torch.optim.Adam(p, 1e-3),
                                        log_grad_norm=True),
                  (x, y), (xv, yv), epochs=12, batch_size=64)


@run("lightning")
def lightning_cnn_batchnorm_steplr(out: Path) -> None:
    torch.manual_seed(1)
    x, y, xv, yv = digits(1, flat=False)
    module = lightning_module(SmallCNN(), lambda p: torch.optim.SGD(p, 0.05, momentum=0.9),
                              lambda o: torch.optim.lr_scheduler.StepLR(o, 5, gamma=0.2))
    lightning_fit(out, module, (x, y), (xv, yv), epochs=15, batch_size=32, lr_monitor=True)


@run("lightning", "SGD at lr 1.5 with momentum 0.9")
def lightning_lr_too_high(out: Path) -> None:
    torch.manual_seed(2)
    x, y, xv, yv = digits(2)
    module = lightning_module(mlp(hidden=128), lambda p: torch.optim.SGD(p, 1.5, momentum=0.9),
                              log_grad_norm=True)
    lightning_fit(out, module, (x, y), (xv, yv), epochs=6, batch_size=32)


@run("lightning", "a 512-wide MLP on 80 training rows for 150 epochs")
def lightning_overfit_small_data(out: Path) -> None:
    torch.manual_seed(3)
    x, y, xv, yv = digits(3)
    module = lightning_module(mlp(hidden=512), lambda p: torch.optim.Adam(p, 2e-3))
    lightning_fit(out, module, (x[:80], y[:80]), (xv, yv), epochs=150, batch_size=16)


@run("lightning", "StepLR(step_size=3) meant in epochs, with interval='step'")
def lightning_steplr_every_batch(out: Path) -> None:
    torch.manual_seed(4)
    x, y, xv, yv = digits(4)
    module = lightning_module(mlp(), lambda p: torch.optim.SGD(p, 0.1, momentum=0.9),
                              lambda o: torch.optim.lr_scheduler.StepLR(o, 3, gamma=0.1),
                              interval="step")
    lightning_fit(out, module, (x, y), (xv, yv), epochs=8, batch_size=32, lr_monitor=True)


@run("lightning", "95% of one class, plain cross-entropy, accuracy as the metric")
def lightning_imbalanced_accuracy(out: Path) -> None:
    torch.manual_seed(5)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3000, 20, generator=g)
    score = x[:, :3].sum(1) + 0.8 * torch.randn(3000, generator=g)
    y = (score > torch.quantile(score, 0.95)).long()
    module = lightning_module(mlp(20, 32, 2), lambda p: torch.optim.SGD(p, 0.01))
    lightning_fit(out, module, (x[:2400], y[:2400]), (x[2400:], y[2400:]), epochs=12,
                  batch_size=64)


@run("lightning")
def lightning_transformer_warmup(out: Path) -> None:
    torch.manual_seed(6)
    x, y, xv, yv = sequences(seed=6)

    def warmup(o):
        return torch.optim.lr_scheduler.LambdaLR(o, lambda s: min(1.0, (s + 1) / 50))
    module = lightning_module(TinyTransformer(), lambda p: torch.optim.AdamW(p, 2e-3), warmup,
                              interval="step", log_grad_norm=True)
    lightning_fit(out, module, (x, y), (xv, yv), epochs=8, batch_size=32, lr_monitor=True)


@run("lightning", "validation rows are training rows; heavy dropout while training")
def lightning_validation_is_training(out: Path) -> None:
    torch.manual_seed(7)
    x, y, _, _ = digits(7)
    module = lightning_module(mlp(hidden=128, dropout=0.6),
                              lambda p: torch.optim.Adam(p, 1e-3))
    lightning_fit(out, module, (x, y), (x[:300], y[:300]), epochs=15, batch_size=64)


# ---------------------------------------------------------------- torch SummaryWriter

def torch_writer(out: Path):
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(str(out))


@run("torch")
def torch_sgd_cosine(out: Path) -> None:
    torch.manual_seed(10)
    x, y, xv, yv = digits(10)
    model = mlp(hidden=96)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    epochs, size = 10, 64
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * math.ceil(len(y) / size))
    writer, step = torch_writer(out), 0
    for _ in range(epochs):
        for b in batches(len(y), size):
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            writer.add_scalar("Loss/train", loss.item(), step)
            writer.add_scalar("LR", sched.get_last_lr()[0], step)
        with torch.no_grad():
            logits = model(xv)
        writer.add_scalar("Loss/val", F.cross_entropy(logits, yv).item(), step)
        writer.add_scalar("Accuracy/val", accuracy(logits, yv), step)
    writer.close()


@run("torch")
def torch_lstm_add_scalars(out: Path) -> None:
    torch.manual_seed(11)
    x, y, xv, yv = sequences(seed=11)
    model = Recurrent("lstm")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    writer, step = torch_writer(out), 0
    for _ in range(12):
        running = []
        for b in batches(len(y), 32):
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            running.append(loss.item())
            if step % 10 == 0:
                with torch.no_grad():
                    val = F.cross_entropy(model(xv), yv).item()
                writer.add_scalars("loss", {"train": float(np.mean(running)), "val": val}, step)
                running = []
    writer.close()


@run("torch")
def torch_per_epoch_only(out: Path) -> None:
    torch.manual_seed(12)
    x, y, xv, yv = digits(12)
    model = mlp(hidden=64, depth=3)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    writer = torch_writer(out)
    for epoch in range(25):
        total = 0.0
        for b in batches(len(y), 128):
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        with torch.no_grad():
            logits = model(xv)
        writer.add_scalar("train_loss", total / len(y), epoch)
        writer.add_scalar("val_loss", F.cross_entropy(logits, yv).item(), epoch)
        writer.add_scalar("val_accuracy", accuracy(logits, yv), epoch)
    writer.close()


@run("torch", "Adam at lr 1.0: the loss jumps within a few steps and stays high")
def torch_blow_up_in_first_steps(out: Path) -> None:
    torch.manual_seed(13)
    x, y, xv, yv = digits(13)
    model = mlp(hidden=128)
    opt = torch.optim.Adam(model.parameters(), lr=1.0)
    writer, step = torch_writer(out), 0
    for _ in range(4):
        for b in batches(len(y), 32):
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            writer.add_scalar("Loss/train", loss.item(), step)
        with torch.no_grad():
            writer.add_scalar("Loss/val", F.cross_entropy(model(xv), yv).item(), step)
    writer.close()


@run("torch", "three shuffled epochs, then a resumed loader that reads class-sorted files")
def torch_sorted_after_resume(out: Path) -> None:
    torch.manual_seed(14)
    x, y, xv, yv = digits(14)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    writer, step = torch_writer(out), 0
    by_class = y.argsort(stable=True)
    for epoch in range(8):
        order = torch.randperm(len(y)) if epoch < 3 else by_class
        for b in order.split(32):
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            writer.add_scalar("Loss/train", loss.item(), step)
        with torch.no_grad():
            writer.add_scalar("Loss/val", F.cross_entropy(model(xv), yv).item(), step)
    writer.close()


@run("torch", "validation split holds jittered copies of training rows; test is clean")
def torch_leaky_split(out: Path) -> None:
    torch.manual_seed(15)
    x, y, xt, yt = digits(15)
    x, y = x[:300], y[:300]
    pick = torch.randperm(300)[:200]
    xv, yv = x[pick] + 0.02 * torch.randn(200, 64), y[pick]
    xt = xt + 0.25 * torch.randn_like(xt)  # production scans are noisier
    model = mlp(hidden=256)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    writer, step = torch_writer(out), 0
    for _ in range(60):
        for b in batches(len(y), 32):
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            writer.add_scalar("Loss/train", loss.item(), step)
        with torch.no_grad():
            writer.add_scalar("Loss/val", F.cross_entropy(model(xv), yv).item(), step)
            writer.add_scalar("Accuracy/val", accuracy(model(xv), yv), step)
    with torch.no_grad():
        writer.add_scalar("Accuracy/test", accuracy(model(xt), yt), step)
    writer.close()


@run("torch", "training loss summed over the batch (lr scaled to match), validation averaged")
def torch_summed_training_loss(out: Path) -> None:
    torch.manual_seed(18)
    x, y, xv, yv = digits(18)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05 / 32, momentum=0.9)
    writer, step = torch_writer(out), 0
    for _ in range(8):
        for b in batches(len(y), 32):
            loss = F.cross_entropy(model(x[b]), y[b], reduction="sum")
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            writer.add_scalar("loss/train", loss.item(), step)
        with torch.no_grad():
            writer.add_scalar("loss/val", F.cross_entropy(model(xv), yv).item(), step)
    writer.close()


@run("torch", "the loss written as the negative log-likelihood's negative")
def torch_sign_flipped(out: Path) -> None:
    torch.manual_seed(16)
    x, y, _, _ = digits(16)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    writer, step = torch_writer(out), 0
    for _ in range(3):
        for b in batches(len(y), 32):
            logp = F.log_softmax(model(x[b]), 1)
            objective = logp.gather(1, y[b, None]).mean()  # meant: -objective
            opt.zero_grad()
            objective.backward()
            opt.step()
            step += 1
            writer.add_scalar("Loss/train", -objective.item(), step)
    writer.close()


@run("torch", "a learning rate raised 30x at step 200 (a restart with the wrong peak)")
def torch_learned_then_collapsed(out: Path) -> None:
    torch.manual_seed(17)
    x, y, xv, yv = digits(17)
    model = mlp(hidden=128)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    writer, step = torch_writer(out), 0
    for _ in range(10):
        for b in batches(len(y), 32):
            if step == 200:
                for group in opt.param_groups:
                    group["lr"] = 1.5
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            total = nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
            opt.step()
            step += 1
            writer.add_scalar("train/loss", loss.item(), step)
            writer.add_scalar("train/grad_norm", total.item(), step)
            writer.add_scalar("train/lr", opt.param_groups[0]["lr"], step)
        with torch.no_grad():
            writer.add_scalar("val/loss", F.cross_entropy(model(xv), yv).item(), step)
    writer.close()


# ---------------------------------------------------------------- tensorboardX, HF tags

class HFLogger:
    """What transformers.Trainer writes: train/* every logging_steps, eval/* per eval."""

    def __init__(self, out: Path, logging_steps: int = 10) -> None:
        from tensorboardX import SummaryWriter
        self.writer = SummaryWriter(str(out))
        self.every, self.losses, self.norms = logging_steps, [], []

    def step(self, step: int, loss: float, grad_norm: float, lr: float) -> None:
        self.losses.append(loss)
        self.norms.append(grad_norm)
        if step % self.every == 0:
            self.writer.add_scalar("train/loss", float(np.mean(self.losses)), step)
            self.writer.add_scalar("train/grad_norm", self.norms[-1], step)
            self.writer.add_scalar("train/learning_rate", lr, step)
            self.writer.add_scalar("train/epoch", step / 50, step)
            self.losses, self.norms = [], []

    def eval(self, step: int, **metrics: float) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(f"eval/{name}", value, step)

    def close(self) -> None:
        self.writer.close()


def hf_train(out: Path, model: nn.Module, data_: tuple, steps: int, lr: float,
             warmup: int = 0, batch_size: int = 32, loss_fn: Callable = F.cross_entropy,
             eval_every: int = 100, metric: str | None = "accuracy", clip: float | None = 1.0,
             weight_decay: float = 0.0, optimizer: str = "adamw") -> None:
    x, y, xv, yv = data_
    opt = (torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
           if optimizer == "adamw" else torch.optim.SGD(model.parameters(), lr=lr))

    def schedule(s: int) -> float:
        return min(1.0, (s + 1) / warmup) if warmup and s < warmup else \
            max(0.0, (steps - s) / max(1, steps - warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    log = HFLogger(out)
    step = 0
    while step < steps:
        for b in batches(len(y), batch_size):
            model.train()
            loss = loss_fn(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            norm = nn.utils.clip_grad_norm_(model.parameters(), clip or float("inf"))
            opt.step()
            sched.step()
            step += 1
            log.step(step, loss.item(), norm.item(), sched.get_last_lr()[0])
            if step % eval_every == 0 or step == steps:
                model.eval()
                with torch.no_grad():
                    out_v = model(xv)
                    found = {"loss": loss_fn(out_v, yv).item()}
                    if metric == "accuracy":
                        found["accuracy"] = accuracy(out_v, yv)
                    elif metric == "mae":
                        found["mae"] = (out_v.squeeze(-1) - yv).abs().mean().item()
                log.eval(step, **found)
            if step >= steps:
                break
    log.close()


@run("tbx")
def tbx_transformer_warmup_decay(out: Path) -> None:
    torch.manual_seed(20)
    hf_train(out, TinyTransformer(), sequences(seed=20), steps=600, lr=1e-3, warmup=60,
             weight_decay=0.01)


def mse(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred.squeeze(-1), y)


@run("tbx")
def tbx_regression_mae(out: Path) -> None:
    torch.manual_seed(21)
    hf_train(out, mlp(8, 64, 1), regression(seed=21), steps=800, lr=3e-3, loss_fn=mse,
             metric="mae")


@run("tbx", "SGD at lr 1e-6, the AdamW rate with a slipped decimal")
def tbx_lr_far_too_low(out: Path) -> None:
    torch.manual_seed(22)
    hf_train(out, mlp(), digits(22), steps=600, lr=1e-6, optimizer="sgd")


@run("tbx", "log(softmax(x)) by hand, no clipping; fine until the model is confident")
def tbx_sudden_nan(out: Path) -> None:
    torch.manual_seed(23)

    def nll(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        p = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
        return -torch.log(p.gather(1, y[:, None])).mean()
    model = mlp(hidden=128)
    with torch.no_grad():
        model[-1].weight.mul_(8.0)  # a copied init with a large output scale
    hf_train(out, model, digits(23), steps=1500, lr=0.3, loss_fn=nll, clip=None,
             optimizer="sgd")


@run("tbx")
def tbx_lstm_long_sequences(out: Path) -> None:
    torch.manual_seed(24)
    hf_train(out, Recurrent("lstm", vocab=4, classes=4), first_token(seed=24), steps=500,
             lr=5e-3, warmup=20)


@run("tbx", "ten updates to a pretrained-looking head: fine-tuning that converges at once")
def tbx_converges_at_once(out: Path) -> None:
    torch.manual_seed(25)
    x, y, xv, yv = regression(seed=25)
    y, yv = 2 * x[:, 0] - x[:, 1], 2 * xv[:, 0] - xv[:, 1]  # a linear target
    hf_train(out, nn.Linear(8, 1), (x, y, xv, yv), steps=500, lr=0.05, loss_fn=mse,
             metric="mae", eval_every=50)


# ---------------------------------------------------------------- Probe

def probe_fit(out: Path, model: nn.Module, data_: tuple, epochs: int, lr: float,
              batch_size: int = 32, optimizer: str = "sgd", momentum: float = 0.0,
              serve_in_train_mode: bool = False, tag: str = "loss/train",
              rebuild_model: bool = False, full_batch: bool = False,
              clip: float | None = None) -> None:
    from sandbox.probe import Probe
    x, y, xv, yv = data_
    opt = (torch.optim.Adam(model.parameters(), lr=lr) if optimizer == "adam" else
           torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum))
    if rebuild_model:  # "re-initialise before training", after the optimizer was built
        model = mlp()
    with Probe(out) as probe:
        probe.watch(model)
        step = 0
        for _ in range(epochs):
            model.train()
            for b in [torch.arange(len(y))] if full_batch else batches(len(y), batch_size):
                loss = F.cross_entropy(model(x[b]), y[b])
                opt.zero_grad()
                loss.backward()
                if clip:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
                step += 1
                probe.log(tag, loss.item(), step)
            if not serve_in_train_mode:
                model.eval()
            with torch.no_grad():
                logits = model(xv)
                probe.log("loss/val", F.cross_entropy(logits, yv).item(), step)
                probe.log("accuracy/val", accuracy(logits, yv), step)
        probe.check_batch_dependence(model, xv, step)


@run("probe")
def probe_small_batch_dropout(out: Path) -> None:
    torch.manual_seed(30)
    probe_fit(out, mlp(hidden=128, dropout=0.2), digits(30), epochs=2, lr=0.02, batch_size=4)


@run("probe")
def probe_cnn_batchnorm(out: Path) -> None:
    torch.manual_seed(31)
    probe_fit(out, SmallCNN(), digits(31, flat=False), epochs=6, lr=0.05, momentum=0.9)


@run("probe", "full-batch gradient descent at lr 0.2 on a tanh regressor, past the edge "
              "of stability")
def probe_full_batch_edge_of_stability(out: Path) -> None:
    from sandbox.probe import Probe
    torch.manual_seed(32)
    x, y, xv, yv = regression(seed=32)
    model = mlp(8, 64, 1, act=nn.Tanh)
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    with Probe(out) as probe:
        probe.watch(model)
        for step in range(1, 801):
            loss = F.mse_loss(model(x).squeeze(-1), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            probe.log("loss/train", loss.item(), step)
            if step % 50 == 0:
                with torch.no_grad():
                    probe.log("loss/val", F.mse_loss(model(xv).squeeze(-1), yv).item(), step)


@run("probe", "eight sigmoid layers, default init, plain SGD")
def probe_deep_sigmoid(out: Path) -> None:
    torch.manual_seed(33)
    probe_fit(out, mlp(depth=8, act=nn.Sigmoid), digits(33), epochs=6, lr=0.1)


@run("probe", "a vanilla RNN with recurrent weights scaled 3x, no clipping")
def probe_rnn_no_clipping(out: Path) -> None:
    torch.manual_seed(34)
    model = Recurrent("rnn", vocab=4, classes=4)
    with torch.no_grad():
        model.rnn.weight_hh_l0.mul_(3.0)
    probe_fit(out, model, first_token(length=40, seed=34), epochs=8, lr=0.05, momentum=0.9)


@run("probe", "Adam at lr 0.05 on an MLP")
def probe_adam_lr_high(out: Path) -> None:
    torch.manual_seed(35)
    probe_fit(out, mlp(hidden=128), digits(35), epochs=6, lr=0.05, optimizer="adam")


@run("probe", "a post-norm transformer at Adam lr 3e-3 with no warmup")
def probe_transformer_no_warmup(out: Path) -> None:
    torch.manual_seed(36)
    probe_fit(out, TinyTransformer(norm_first=False, layers=3), sequences(seed=36), epochs=3,
              lr=3e-3, optimizer="adam")


@run("probe", "first-layer biases initialised to -3")
def probe_dead_relus(out: Path) -> None:
    torch.manual_seed(37)
    model = mlp(hidden=64)
    with torch.no_grad():
        model[0].bias.fill_(-3.0)
    probe_fit(out, model, digits(37), epochs=5, lr=0.05)


@run("probe", "BatchNorm model evaluated and served without model.eval()")
def probe_batchnorm_train_mode_eval(out: Path) -> None:
    torch.manual_seed(38)
    probe_fit(out, mlp(bn=True), digits(38), epochs=6, lr=0.05, momentum=0.9,
              serve_in_train_mode=True)


@run("probe", "dropout 0.5 left on at evaluation and serving (no model.eval())")
def probe_dropout_at_eval(out: Path) -> None:
    torch.manual_seed(39)
    probe_fit(out, mlp(hidden=128, dropout=0.5), digits(39), epochs=6, lr=0.05, momentum=0.9,
              serve_in_train_mode=True)


@run("probe", "SGD at 1e-4: an Adam learning rate given to SGD without momentum")
def probe_lr_too_small(out: Path) -> None:
    torch.manual_seed(40)
    probe_fit(out, mlp(), digits(40), epochs=5, lr=1e-4)


@run("probe", "the model re-created after the optimizer was built on the old one")
def probe_optimizer_on_old_model(out: Path) -> None:
    torch.manual_seed(41)
    probe_fit(out, mlp(), digits(41), epochs=4, lr=0.05, momentum=0.9, rebuild_model=True)


@run("probe")
def probe_late_learner_lstm(out: Path) -> None:
    torch.manual_seed(42)
    probe_fit(out, Recurrent("lstm", vocab=4, classes=4), first_token(length=30, seed=42),
              epochs=12, lr=0.5, momentum=0.0, clip=1.0)


@run("probe", "Adam at lr 0.3 on a BatchNorm MLP")
def probe_adam_lr_far_too_high(out: Path) -> None:
    torch.manual_seed(43)
    probe_fit(out, mlp(hidden=128, bn=True), digits(43), epochs=5, lr=0.3, optimizer="adam")


@run("probe", "SGD at lr 2.0, momentum 0.9, on a BatchNorm MLP")
def probe_sgd_lr_high_batchnorm(out: Path) -> None:
    torch.manual_seed(46)
    probe_fit(out, mlp(hidden=128, bn=True), digits(46), epochs=5, lr=2.0, momentum=0.9)


@run("probe", "a post-norm transformer at Adam lr 1e-2 with no warmup")
def probe_transformer_no_warmup_high_lr(out: Path) -> None:
    torch.manual_seed(44)
    probe_fit(out, TinyTransformer(norm_first=False, layers=3), sequences(seed=44), epochs=3,
              lr=1e-2, optimizer="adam")


@run("probe", "the backbone frozen for a warm-up epoch and never unfrozen")
def probe_frozen_backbone(out: Path) -> None:
    torch.manual_seed(45)
    model = SmallCNN()
    for layer in (model.conv1, model.bn1, model.conv2, model.bn2):
        layer.requires_grad_(False)
    probe_fit(out, model, digits(45, flat=False), epochs=4, lr=0.05, momentum=0.9)


@run("torch", "full-batch SGD at lr 0.8 on a tanh regressor")
def torch_regression_lr_too_high(out: Path) -> None:
    torch.manual_seed(19)
    x, y, xv, yv = regression(seed=19)
    model = mlp(8, 64, 1, act=nn.Tanh)
    opt = torch.optim.SGD(model.parameters(), lr=0.8)
    writer = torch_writer(out)
    for step in range(1, 301):
        loss = F.mse_loss(model(x).squeeze(-1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        writer.add_scalar("Loss/train", loss.item(), step)
        if step % 20 == 0:
            with torch.no_grad():
                writer.add_scalar("Loss/val", F.mse_loss(model(xv).squeeze(-1), yv).item(), step)
    writer.close()


@run("tbx", "binary cross-entropy written by hand: log(sigmoid(z)) and log(1 - sigmoid(z))")
def tbx_hand_written_bce(out: Path) -> None:
    torch.manual_seed(47)
    g = torch.Generator().manual_seed(47)
    x = torch.randn(3000, 10, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).float()
    model = mlp(10, 32, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    log, step = HFLogger(out), 0
    for _ in range(10):
        for b in batches(2400, 64):
            p = torch.sigmoid(model(x[b]).squeeze(-1))
            loss = -(y[b] * torch.log(p) + (1 - y[b]) * torch.log(1 - p)).mean()
            opt.zero_grad()
            loss.backward()
            norm = nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
            opt.step()
            step += 1
            log.step(step, loss.item(), norm.item(), 0.02)
        with torch.no_grad():
            z = model(x[2400:]).squeeze(-1)
            log.eval(step, loss=F.binary_cross_entropy_with_logits(z, y[2400:]).item(),
                     accuracy=((z > 0).float() == y[2400:]).float().mean().item())
    log.close()


@run("probe", "AdamW with weight_decay=2.0 (meant 2e-2) at lr 0.1")
def probe_weight_decay_typo(out: Path) -> None:
    from sandbox.probe import Probe
    torch.manual_seed(48)
    x, y, xv, yv = digits(48)
    model = mlp(hidden=128, bn=True)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=2.0)
    with Probe(out) as probe:
        probe.watch(model)
        step = 0
        for _ in range(5):
            model.train()
            for b in batches(len(y), 32):
                loss = F.cross_entropy(model(x[b]), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                probe.log("loss/train", loss.item(), step)
            model.eval()
            with torch.no_grad():
                probe.log("loss/val", F.cross_entropy(model(xv), yv).item(), step)


def resume_with_lr(out: Path, seed: int, lr: float) -> None:
    """AdamW at 1e-3, then at step 300 a "resume" that builds a fresh optimizer from the
    wrong config.
    """
    torch.manual_seed(seed)
    x, y, xv, yv = digits(seed)
    model = mlp(hidden=128)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    log, step = HFLogger(out), 0
    for _ in range(18):
        for b in batches(len(y), 32):
            if step == 300:
                opt = torch.optim.AdamW(model.parameters(), lr=lr)
            loss = F.cross_entropy(model(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            norm = nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
            opt.step()
            step += 1
            log.step(step, loss.item(), norm.item(), opt.param_groups[0]["lr"])
        with torch.no_grad():
            logits = model(xv)
        log.eval(step, loss=F.cross_entropy(logits, yv).item(), accuracy=accuracy(logits, yv))
    log.close()


@run("tbx", "resumed at step 300 with the pre-warmup learning rate of another config (0.05)")
def tbx_resumed_with_wrong_lr(out: Path) -> None:
    resume_with_lr(out, 26, 0.05)


@run("tbx", "resumed at step 300 with the learning rate of an SGD config (0.5)")
def tbx_resumed_with_sgd_lr(out: Path) -> None:
    resume_with_lr(out, 27, 0.5)

def main(out: Path, names: list[str]) -> None:
    torch.set_num_threads(1)
    for name in names or list(RUNS):
        found = RUNS[name]
        folder = out / found.logger / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        found.make(folder)
        print(f"{found.logger:9} {name}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/corpus/runs"), sys.argv[2:])
