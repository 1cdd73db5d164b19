"""Recognise which of four rehab exercises a patient is doing from a 3-axis wrist sensor.

The harness calls ``train(cfg, data, run)`` with the development split (windows shaped
(N, T, C): 64 time steps of 3 channels) and scores the returned model on a hidden test
split through ``predict``. Try it with ``sandbox run rehab-tracker-v1``.

Each exercise has its own rhythm, buried in drift and sensor noise; a small 1-D
convolutional network picks it up. The split is stratified, so every exercise keeps its
share of the windows in training and in validation. Healthy training: the loss starts
near ln(4) = 1.39, falls below 0.5 within the first two epochs and ends under 0.2;
validation accuracy passes 90%, close to the hidden test.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


# -- data ---------------------------------------------------------------------------
def stratified_split(x, y, val_fraction, generator):
    """Hold out ``val_fraction`` of every exercise's windows for validation."""
    train_rows, val_rows = [], []
    for label in range(int(y.max()) + 1):
        rows = torch.nonzero(y == label).flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)]
        n_val = round(len(rows) * val_fraction)
        val_rows.append(rows[:n_val])
        train_rows.append(rows[n_val:])
    train_rows, val_rows = torch.cat(train_rows), torch.cat(val_rows)
    train_rows = train_rows[torch.randperm(len(train_rows), generator=generator)]
    return (x[train_rows], y[train_rows]), (x[val_rows], y[val_rows])


def make_loaders(cfg, data, seed):
    generator = torch.Generator().manual_seed(seed)
    train_set, val_set = stratified_split(data.x, data.y, cfg.train.val_fraction, generator)
    train_loader = DataLoader(TensorDataset(*train_set), batch_size=cfg.train.batch_size)
    val_loader = DataLoader(TensorDataset(*val_set), batch_size=500)
    return train_loader, val_loader


# -- model --------------------------------------------------------------------------
class RhythmNet(nn.Module):
    """Two strided convolutions over time, global average pooling, a linear head."""

    def __init__(self, channels, width, num_classes):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, width, kernel_size=9, stride=2, padding=4)
        self.conv2 = nn.Conv1d(width, width, kernel_size=5, stride=2, padding=2)
        self.head = nn.Linear(width, num_classes)

    def forward(self, windows):
        h = windows.transpose(1, 2)  # (N, T, C) -> (N, C, T) for Conv1d
        h = F.relu(self.conv1(h))
        h = F.relu(self.conv2(h))
        return self.head(h.mean(dim=2))


# -- optimisation -------------------------------------------------------------------
class Trainer:
    """Owns the model, its optimizer and the step counter the curves are logged at."""

    def __init__(self, model, cfg, run):
        self.model, self.run, self.step = model, run, 0
        self.optimizer = torch.optim.SGD(model.parameters(), lr=cfg.optimizer.lr,
                                         momentum=cfg.optimizer.momentum, nesterov=True)
        warmup = cfg.optimizer.warmup_steps  # linear warmup, then constant
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: min(1.0, (step + 1) / warmup))

    def train_epoch(self, loader):
        self.model.train()
        for windows, labels in loader:
            windows, labels = windows.to(self.run.device), labels.to(self.run.device)
            loss = F.cross_entropy(self.model(windows), labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            self.run.log("loss/train", loss.item(), self.step)
            self.run.log("lr", self.scheduler.get_last_lr()[0], self.step)

    # -- evaluation -----------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, loader):
        self.model.eval()
        total, correct, seen = 0.0, 0, 0
        for windows, labels in loader:
            windows, labels = windows.to(self.run.device), labels.to(self.run.device)
            logits = self.model(windows)
            total += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
        self.run.log("loss/val", total / seen, self.step)
        self.run.log("metric/val", correct / seen, self.step)


@torch.no_grad()
def predict(model, x):
    model.eval()
    return model(x)


# -- training loop ------------------------------------------------------------------
def train(cfg, data, run):
    train_loader, val_loader = make_loaders(cfg, data, run.seed)
    model = run.watch(RhythmNet(data.x.shape[-1], cfg.model.width, data.num_classes)
                      .to(run.device))
    trainer = Trainer(model, cfg, run)
    for epoch in range(cfg.train.epochs):
        trainer.train_epoch(train_loader)
        trainer.evaluate(val_loader)
    return model
