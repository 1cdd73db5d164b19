"""Tutorial: classify 8x8 handwritten digits with a small MLP, trained by SGD.

The harness calls ``train(cfg, data, run)`` with the development split and scores the
returned model on a hidden test split through ``predict``. Try it with
``sandbox run tutorial-first-fix-v1``.

Healthy training: the loss starts near ln(10) = 2.3, falls below 0.5 within the first
two epochs and ends near 0.1; validation accuracy passes 95%.
"""

import torch
import torch.nn.functional as F
from torch import nn


# -- data ---------------------------------------------------------------------------
def split(data, val_fraction, seed):
    """Hold out ``val_fraction`` of each digit's images for validation, so that every
    digit keeps its share in both halves; the training rows stay in a random order.
    """
    order = torch.randperm(len(data.y), generator=torch.Generator().manual_seed(seed))
    held_out = torch.zeros(len(data.y), dtype=torch.bool)
    for digit in data.y.unique():
        rows = order[data.y[order] == digit]
        held_out[rows[:round(len(rows) * val_fraction)]] = True
    fit, val = order[~held_out[order]], order[held_out[order]]
    return (data.x[fit], data.y[fit]), (data.x[val], data.y[val])


def scale(images):
    """Pixel values 0..16 to 0..1."""
    return images / 16.0


# -- model --------------------------------------------------------------------------
class DigitMLP(nn.Module):
    """Flattened pixels, two hidden ReLU layers, ten logits."""

    def __init__(self, hidden, num_classes):
        super().__init__()
        self.fc1 = nn.Linear(64, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, images):
        h = F.relu(self.fc1(images.flatten(1)))
        h = F.relu(self.fc2(h))
        return self.out(h)


def build_optimizer(cfg, model):
    return torch.optim.SGD(model.parameters(), lr=cfg.optimizer.lr,
                           momentum=cfg.optimizer.momentum,
                           weight_decay=cfg.optimizer.weight_decay)


# -- evaluation ---------------------------------------------------------------------
@torch.no_grad()
def evaluate(model, images, labels):
    model.eval()
    logits = model(images)
    loss = F.cross_entropy(logits, labels).item()
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    return loss, accuracy


@torch.no_grad()
def predict(model, images):
    model.eval()
    return model(scale(images))


# -- training loop ------------------------------------------------------------------
def train(cfg, data, run):
    (train_images, train_labels), (val_images, val_labels) = split(
        data, cfg.train.val_fraction, run.seed)
    train_images, train_labels = scale(train_images).to(run.device), train_labels.to(run.device)
    val_images, val_labels = scale(val_images).to(run.device), val_labels.to(run.device)
    model = run.watch(DigitMLP(cfg.model.hidden, data.num_classes).to(run.device))
    optimizer = build_optimizer(cfg, model)

    step = 0
    for epoch in range(5 * cfg.train.epochs):
        model.train()
        for rows in torch.randperm(len(train_labels), device=run.device).split(
                cfg.train.batch_size):
            loss = F.cross_entropy(model(train_images[rows]), train_labels[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            run.log("loss/train", loss.item(), step)

        val_loss, val_accuracy = evaluate(model, val_images, val_labels)
        run.log("loss/val", val_loss, step)
        run.log("metric/val", val_accuracy, step)
    return model
