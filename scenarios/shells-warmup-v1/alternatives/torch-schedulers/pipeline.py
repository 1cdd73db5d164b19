"""Classify points by the radial shell they lie in, with an MLP trained by AdamW under a
warmup + cosine learning-rate schedule.

The harness calls ``train(cfg, data, run)`` with the development split and scores the
returned model on a hidden test split through ``predict``. Try it with
``sandbox run shells-warmup-v1``.

The classes are concentric shells around the origin, so no linear model beats chance
(33%). Healthy training: the learning rate ramps up to optimizer.lr over the warmup
epochs and then decays; the loss leaves ln(3) = 1.10 during the first epoch, is below
0.5 by the third and ends near 0.12; validation accuracy ends between 85% and 92%.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


# -- data ---------------------------------------------------------------------------
def split(data, val_fraction, seed):
    """Random train/validation split of the development data."""
    order = torch.randperm(len(data.y), generator=torch.Generator().manual_seed(seed))
    n_val = int(len(order) * val_fraction)
    val, tr = order[:n_val], order[n_val:]
    return (data.x[tr], data.y[tr]), (data.x[val], data.y[val])


class Standardize:
    """Feature-wise standardization with statistics of the training rows only."""

    def __init__(self, x):
        self.mean, self.std = x.mean(0), x.std(0) + 1e-6

    def __call__(self, x):
        return (x - self.mean.to(x.device)) / self.std.to(x.device)


# -- model --------------------------------------------------------------------------
class ShellNet(nn.Module):
    def __init__(self, in_features, width, depth, num_classes):
        super().__init__()
        layers = []
        for i in range(depth):
            layers += [nn.Linear(in_features if i == 0 else width, width), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


# -- optimisation -------------------------------------------------------------------
def build_optimizer(cfg, model):
    return torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr, betas=(0.9, 0.98),
                             weight_decay=cfg.optimizer.weight_decay)


def build_scheduler(cfg, optimizer, steps_per_epoch):
    """Linear warmup over the first warmup_epochs, then cosine decay to zero at the end
    of training. Stepped once per optimizer step.
    """
    warmup = cfg.schedule.warmup_epochs * steps_per_epoch
    total = cfg.train.epochs * steps_per_epoch
    ramp = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1e-3, total_iters=warmup)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [ramp, decay], milestones=[warmup])


# -- training loop ------------------------------------------------------------------
class Trainer:
    def __init__(self, cfg, model, run, steps_per_epoch):
        self.cfg, self.model, self.run = cfg, model, run
        self.optimizer = build_optimizer(cfg, model)
        self.scheduler = build_scheduler(cfg, self.optimizer, steps_per_epoch)
        self.step = 0

    def train_step(self, x, y):
        loss = F.cross_entropy(self.model(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        self.run.log("loss/train", loss.item(), self.step)

    @torch.no_grad()
    def evaluate(self, x, y):
        self.model.eval()
        logits = self.model(x)
        self.model.train()
        self.run.log("loss/val", F.cross_entropy(logits, y).item(), self.step)
        self.run.log("metric/val", (logits.argmax(1) == y).float().mean().item(), self.step)

    def fit(self, x_train, y_train, x_val, y_val):
        generator = torch.Generator().manual_seed(self.run.seed)
        self.model.train()
        for epoch in range(self.cfg.train.epochs):
            order = torch.randperm(len(y_train), generator=generator)
            for batch in order.split(self.cfg.train.batch_size):
                self.train_step(x_train[batch], y_train[batch])
            self.evaluate(x_val, y_val)
        return self.model


def predict(model, x):
    model.eval()
    return model(model.standardize(x))


def train(cfg, data, run):
    (x_train, y_train), (x_val, y_val) = split(data, cfg.train.val_fraction, run.seed)
    standardize = Standardize(x_train)
    x_train = standardize(x_train).to(run.device)
    x_val = standardize(x_val).to(run.device)
    y_train, y_val = y_train.to(run.device), y_val.to(run.device)

    model = ShellNet(x_train.shape[1], cfg.model.width, cfg.model.depth, data.num_classes)
    model.standardize = standardize
    model = run.watch(model.to(run.device))
    steps_per_epoch = math.ceil(len(y_train) / cfg.train.batch_size)
    trainer = Trainer(cfg, model, run, steps_per_epoch)
    return trainer.fit(x_train, y_train, x_val, y_val)
