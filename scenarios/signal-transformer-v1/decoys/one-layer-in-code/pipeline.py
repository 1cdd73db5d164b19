"""Recognise activities from wrist-sensor windows with a small patch transformer.

Each window is 64 time steps of 3 sensor channels, shaped (N, T, C). The model cuts it
into patches of ``model.patch`` steps (PatchTST style), projects each patch to
``model.d_model``, adds a learned position embedding and runs a stack of standard
``nn.TransformerEncoderLayer`` blocks; the mean over patches goes to a linear head. It
trains with AdamW and a per-step cosine learning-rate schedule; the optimizer and
schedule settings come from the config of the codebase we ported the model from.

The harness calls ``train(cfg, data, run)`` with the development split and scores the
returned model on a hidden test split through ``predict``. Try it with
``sandbox run signal-transformer-v1``.

Healthy training: the loss starts at ln(4) = 1.39, falls below 0.4 within the first
epoch, can wobble around 0.5 in the middle of the run and ends near 0.3; validation
accuracy ends near 90%.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


# -- data ---------------------------------------------------------------------------
def make_loaders(data, cfg, seed):
    """Seeded train/validation split of the windows. The sensor already reports values of
    order one, so they go in as they are.
    """
    order = torch.randperm(len(data.y), generator=torch.Generator().manual_seed(seed))
    n_val = int(len(order) * cfg.train.val_fraction)
    fit, val = order[n_val:], order[:n_val]
    windows = data.x.float()
    train_loader = DataLoader(TensorDataset(windows[fit], data.y[fit]),
                              batch_size=cfg.train.batch_size, shuffle=True,
                              generator=torch.Generator().manual_seed(seed))
    val_loader = DataLoader(TensorDataset(windows[val], data.y[val]), batch_size=400)
    return train_loader, val_loader


# -- model --------------------------------------------------------------------------
class PatchTransformer(nn.Module):
    def __init__(self, cfg, length, channels, num_classes):
        super().__init__()
        m = cfg.model
        self.patch = m.patch
        self.embed = nn.Linear(m.patch * channels, m.d_model)
        self.pos = nn.Parameter(0.02 * torch.randn(length // m.patch, m.d_model))
        layer = nn.TransformerEncoderLayer(m.d_model, m.heads, m.ffn, m.dropout,
                                           activation=nn.ReLU(), batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(m.d_model, num_classes)

    def forward(self, windows):
        B, T, C = windows.shape
        patches = windows.reshape(B, T // self.patch, self.patch * C)
        h = self.encoder(self.embed(patches) + self.pos)
        return self.head(h.mean(dim=1))


# -- optimisation -------------------------------------------------------------------
def build_optimizer(cfg, model):
    return torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr,
                             betas=tuple(cfg.optimizer.betas),
                             weight_decay=cfg.optimizer.weight_decay)


def build_scheduler(cfg, optimizer, total_steps):
    """Cosine decay of the learning rate, per optimizer step, from its peak to
    ``final_lr_fraction`` of it.
    """
    floor = cfg.schedule.final_lr_fraction

    def factor(step):
        progress = min(step / max(1, total_steps), 1.0)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# -- training loop ------------------------------------------------------------------
class Trainer:
    def __init__(self, cfg, model, run, total_steps):
        self.model, self.run = model, run
        self.optimizer = build_optimizer(cfg, model)
        self.scheduler = build_scheduler(cfg, self.optimizer, total_steps)
        self.step = 0

    def train_epoch(self, loader):
        self.model.train()
        for windows, labels in loader:
            windows, labels = windows.to(self.run.device), labels.to(self.run.device)
            loss = F.cross_entropy(self.model(windows), labels)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            self.run.log("loss/train", loss.item(), self.step)
            self.run.log("lr", self.scheduler.get_last_lr()[0], self.step)

    @torch.no_grad()
    def evaluate(self, loader):
        self.model.eval()
        total, correct, count = 0.0, 0, 0
        for windows, labels in loader:
            windows, labels = windows.to(self.run.device), labels.to(self.run.device)
            logits = self.model(windows)
            total += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(1) == labels).sum().item()
            count += len(labels)
        self.run.log("loss/val", total / count, self.step)
        self.run.log("metric/val", correct / count, self.step)


@torch.no_grad()
def predict(model, x):
    model.eval()
    return model(x.float())


def train(cfg, data, run):
    torch.manual_seed(run.seed)
    train_loader, val_loader = make_loaders(data, cfg, run.seed)
    model = PatchTransformer(cfg, data.x.shape[1], data.x.shape[2],
                             data.num_classes).to(run.device)
    run.watch(model)
    trainer = Trainer(cfg, model, run, total_steps=cfg.train.epochs * len(train_loader))
    for _ in range(cfg.train.epochs):
        trainer.train_epoch(train_loader)
        trainer.evaluate(val_loader)
    return model
