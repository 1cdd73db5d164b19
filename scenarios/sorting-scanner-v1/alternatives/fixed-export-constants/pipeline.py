"""Read postcode digits off the sorting line's scans with a LeNet-style CNN.

The sorting line's scanner exports 8x8 greyscale crops as 8-bit images (255 = white
paper, 0 = full ink). The harness calls ``train(cfg, data, run)`` with the development
split of the UCI digits (images shaped (N, 1, 8, 8), grey levels 0..16), which the
pipeline turns into the scanner's export format, so that training sees what the line
sends; it scores the returned model on a hidden test split through ``predict``, which
converts its images the same way. Try it with ``sandbox run sorting-scanner-v1``.

Training draws random minibatches for a fixed number of steps (nanoGPT's ``get_batch``)
and evaluates every ``train.eval_every`` steps. Healthy training: the loss leaves
ln(10) = 2.3 within the first fifty steps and ends below 0.05; validation accuracy passes
95%, within a point or two of the hidden test.
"""

import torch
import torch.nn.functional as F
from torch import nn


# -- data ---------------------------------------------------------------------------
def to_scanner_format(images):
    """The scanner's 8-bit export: white paper reads 255 and full ink 0, the 17 UCI grey
    levels (0 = paper, 16 = ink) spread over that range and rounded the way the line's
    firmware quantises them.
    """
    return 255.0 - torch.round(images * (255.0 / 16.0))


EXPORT_MEAN, EXPORT_STD = 177.0, 96.0  # grey-level statistics of the scanner export


def standardise(scans):
    return (scans - EXPORT_MEAN) / EXPORT_STD


def holdout(n, val_fraction, generator):
    order = torch.randperm(n, generator=generator)
    n_val = int(n * val_fraction)
    return order[n_val:], order[:n_val]


def get_batch(scans, labels, batch_size, generator):
    """A minibatch drawn uniformly with replacement."""
    rows = torch.randint(len(labels), (batch_size,), generator=generator)
    return scans[rows], labels[rows]


# -- model --------------------------------------------------------------------------
class LeNet(nn.Module):
    """LeNet-5 shrunk to 8x8 inputs: convolution, tanh, 2x2 average pooling (8x8 -> 4x4),
    a second convolution and a small tanh classifier.
    """

    def __init__(self, width, num_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, kernel_size=3, padding=1), nn.Tanh(),
            nn.AvgPool2d(2),
            nn.Conv2d(width, 2 * width, kernel_size=3, padding=1), nn.Tanh(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * width * 4 * 4, 64), nn.Tanh(),
            nn.Linear(64, num_classes),
        )

    def forward(self, scans):
        return self.classifier(self.features(scans))


# -- optimisation -------------------------------------------------------------------
def configure_optimizer(cfg, model):
    return torch.optim.SGD(model.parameters(), lr=cfg.optimizer.lr,
                           momentum=cfg.optimizer.momentum)


# -- evaluation ---------------------------------------------------------------------
@torch.no_grad()
def estimate(model, scans, labels):
    model.eval()
    logits = model(scans)
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    return F.cross_entropy(logits, labels).item(), accuracy


@torch.no_grad()
def predict(model, x):
    model.eval()
    return model(standardise(to_scanner_format(x)))


# -- training loop ------------------------------------------------------------------
def train(cfg, data, run):
    generator = torch.Generator().manual_seed(run.seed)
    fit, val = holdout(len(data.y), cfg.train.val_fraction, generator)
    scans = standardise(to_scanner_format(data.x)).to(run.device)
    labels = data.y.to(run.device)
    train_scans, train_labels = scans[fit], labels[fit]
    val_scans, val_labels = scans[val], labels[val]

    model = run.watch(LeNet(cfg.model.width, data.num_classes).to(run.device))
    optimizer = configure_optimizer(cfg, model)

    for step in range(1, cfg.train.steps + 1):
        model.train()
        x, y = get_batch(train_scans, train_labels, cfg.train.batch_size, generator)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        run.log("loss/train", loss.item(), step)

        if step % cfg.train.eval_every == 0 or step == cfg.train.steps:
            val_loss, val_accuracy = estimate(model, val_scans, val_labels)
            run.log("loss/val", val_loss, step)
            run.log("metric/val", val_accuracy, step)
    return model
