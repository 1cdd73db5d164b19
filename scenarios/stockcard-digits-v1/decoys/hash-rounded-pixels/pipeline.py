"""Read the handwritten quantity digit on scanned stock cards with a small CNN.

The harness calls ``train(cfg, data, run)`` with the scanning room's export (``data.x``:
(N, 1, 8, 8) grey levels 0..16, ``data.y``: the digit keyed in by the data-entry team)
and scores the returned model on cards it has never seen through ``predict``. Try it
with ``sandbox run stockcard-digits-v1``.

Keyed labels are imperfect, so no model agrees with every one of them. Healthy
training: the training loss falls, the validation loss bottoms out within a few epochs
(early stopping keeps that checkpoint), and validation accuracy is what the model
scores on next month's cards.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset


class CardReader(nn.Module):
    """A 3x3 conv on the 8x8 crop, a second one on the pooled 4x4 map, then an MLP head."""

    def __init__(self, channels, hidden, dropout, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * channels * 4 * 4, hidden), nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.head(self.stem(x / 16.0))


def coarse_hash(images, levels=4):
    """A perceptual key per scan: 2x2-pooled to 4x4, scaled by its brightest cell and
    rounded to ``levels`` grey levels, so re-scans with a little noise share the key.
    """
    pooled = F.avg_pool2d(images.float(), 2).flatten(1)
    pooled = pooled / pooled.max(dim=1, keepdim=True).values.clamp_min(1e-6)
    return torch.round(pooled * (levels - 1)).to(torch.int8)


def make_loaders(data, cfg, generator):
    cards = TensorDataset(data.x, data.y)
    key = coarse_hash(data.x)
    _, group = torch.unique(key, dim=0, return_inverse=True)
    n_groups = int(group.max()) + 1
    n_val = int(n_groups * cfg.train.val_fraction)
    held_out = torch.randperm(n_groups, generator=generator)[:n_val]
    in_val = torch.isin(group, held_out)
    train_set = Subset(cards, torch.nonzero(~in_val).flatten().tolist())
    val_set = Subset(cards, torch.nonzero(in_val).flatten().tolist())
    train_loader = DataLoader(train_set, batch_size=cfg.train.batch_size, shuffle=True,
                              generator=generator)
    val_loader = DataLoader(val_set, batch_size=512)
    return train_loader, val_loader


@torch.no_grad()
def evaluate(model, loader, device):
    model.eval()
    loss, hits, seen = 0.0, 0, 0
    for images, digits in loader:
        images, digits = images.to(device), digits.to(device)
        logits = model(images)
        loss += F.cross_entropy(logits, digits, reduction="sum").item()
        hits += (logits.argmax(1) == digits).sum().item()
        seen += len(digits)
    return loss / seen, hits / seen


@torch.no_grad()
def predict(model, x):
    model.eval()
    return model(x)


def train(cfg, data, run):
    generator = torch.Generator().manual_seed(run.seed)
    train_loader, val_loader = make_loaders(data, cfg, generator)

    model = CardReader(cfg.model.channels, cfg.model.hidden, cfg.model.dropout)
    model = run.watch(model.to(run.device))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr,
                                  weight_decay=cfg.optimizer.weight_decay)

    best = {"loss": float("inf"), "accuracy": 0.0, "state": None}
    bad_epochs, step = 0, 0
    for epoch in range(cfg.train.epochs):
        model.train()
        for images, digits in train_loader:
            images, digits = images.to(run.device), digits.to(run.device)
            loss = F.cross_entropy(model(images), digits)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            run.log("loss/train", loss.item(), step)

        val_loss, val_accuracy = evaluate(model, val_loader, run.device)
        run.log("loss/val", val_loss, step)
        if val_loss < best["loss"]:
            best = {"loss": val_loss, "accuracy": val_accuracy,
                    "state": {k: v.clone() for k, v in model.state_dict().items()}}
            bad_epochs = 0
        else:
            bad_epochs += 1
        run.log("metric/val", best["accuracy"], step)
        if bad_epochs >= cfg.train.patience:
            break

    model.load_state_dict(best["state"])
    return model
