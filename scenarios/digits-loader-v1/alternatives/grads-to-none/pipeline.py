"""Classify 8x8 handwritten digits with a small CNN, fed through a DataLoader.

The harness calls ``train(cfg, data, run)`` with the development split and scores the
returned model on a hidden test split through ``predict``. Try it with
``sandbox run digits-loader-v1``.

Images arrive as (N, 1, 8, 8) with pixel values 0..16. Healthy training: the loss starts
at ln(10) = 2.3, falls below 0.5 by the third epoch and ends under 0.1; validation
accuracy passes 95%, within a point or two of the hidden test.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler


# -- data ---------------------------------------------------------------------------
class DigitImages(Dataset):
    """Digit images with pixels scaled from 0..16 to 0..1, and their labels. Indexed with
    a list of rows it returns them as one batch, so the loaders below fetch a whole batch
    per item instead of collating 8x8 images one at a time.
    """

    def __init__(self, images, labels):
        self.images = images / 16.0
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]


def make_loaders(cfg, data, seed):
    """Hold out a random validation share; shuffle the training rows every epoch."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data.y), generator=generator)
    n_val = int(len(order) * cfg.train.val_fraction)
    val, tr = order[:n_val], order[n_val:]
    train_set = DigitImages(data.x[tr], data.y[tr])
    val_set = DigitImages(data.x[val], data.y[val])
    shuffled = BatchSampler(RandomSampler(train_set, generator=generator),
                            batch_size=cfg.train.batch_size, drop_last=False)
    in_order = BatchSampler(SequentialSampler(val_set), batch_size=256, drop_last=False)
    train_loader = DataLoader(train_set, sampler=shuffled, batch_size=None)
    val_loader = DataLoader(val_set, sampler=in_order, batch_size=None)
    return train_loader, val_loader


# -- model --------------------------------------------------------------------------
class DigitCNN(nn.Module):
    """A 3x3 convolution and a 2x2 pooling (8x8 -> 4x4), then a small classifier."""

    def __init__(self, channels, hidden, num_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * 4 * 4, hidden), nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, images):
        return self.classifier(self.features(images))


# -- optimisation -------------------------------------------------------------------
def build_optimizer(cfg, model):
    return torch.optim.SGD(model.parameters(), lr=cfg.optimizer.lr,
                           momentum=cfg.optimizer.momentum,
                           weight_decay=cfg.optimizer.weight_decay)


def train_one_epoch(model, loader, optimizer, device, run, step):
    model.train()
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        loss = F.cross_entropy(model(images), labels)
        for p in model.parameters():
            p.grad = None
        loss.backward()
        optimizer.step()
        step += 1
        run.log("loss/train", loss.item(), step)
    return step


# -- evaluation ---------------------------------------------------------------------
@torch.no_grad()
def evaluate(model, loader, device):
    """Loss and accuracy over the whole loader, weighted by batch size."""
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        logits = model(images)
        total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        count += len(labels)
    return total_loss / count, correct / count


def predict(model, x):
    model.eval()
    return model(x / 16.0)


# -- training loop ------------------------------------------------------------------
def train(cfg, data, run):
    train_loader, val_loader = make_loaders(cfg, data, run.seed)
    model = run.watch(DigitCNN(cfg.model.channels, cfg.model.hidden,
                               data.num_classes).to(run.device))
    optimizer = build_optimizer(cfg, model)
    optimizer.zero_grad(set_to_none=True)

    step = 0
    for epoch in range(cfg.train.epochs):
        step = train_one_epoch(model, train_loader, optimizer, run.device, run, step)
        val_loss, val_accuracy = evaluate(model, val_loader, run.device)
        run.log("loss/val", val_loss, step)
        run.log("metric/val", val_accuracy, step)
    return model
