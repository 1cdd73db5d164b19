"""Read the digits of utility-meter photos with a small CNN, trained with augmentation.

The meter readers' phones send 8x8 greyscale crops of single digits; handheld shots are
off by a pixel now and then and often have a glare spot, so training augments every
batch with random one-pixel shifts and random erasing (torchvision's ``RandomErasing``,
written here for batches). The harness calls ``train(cfg, data, run)`` with the
development split of the UCI digits (images shaped (N, 1, 8, 8), grey levels 0..16) and
scores the returned model on a hidden test split through ``predict``, the way the
reading service calls it. Try it with ``sandbox run meter-reader-v1``.

The preprocessing travels with the model (``model.preprocess``), so the service cannot
drift from what training did. Healthy training: the loss on augmented batches falls from
ln(10) = 2.3 to about 0.8 (erased digits stay ambiguous), validation accuracy on clean
crops passes 93%, and the service scores within a point or two of validation.
"""

import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset


# -- data ---------------------------------------------------------------------------
class ToUnitRange:
    def __call__(self, images):
        return images / 16.0


class RandomShift:
    """Move each image by up to ``max_shift`` pixels in each direction, filling with 0."""

    def __init__(self, max_shift):
        self.max_shift = max_shift

    def __call__(self, images):
        n, _, h, w = images.shape
        s = self.max_shift
        padded = nn.functional.pad(images, (s, s, s, s))
        dy, dx = torch.randint(0, 2 * s + 1, (2, n, 1))
        rows = (dy + torch.arange(h))[:, :, None]
        cols = (dx + torch.arange(w))[:, None, :]
        return padded[torch.arange(n)[:, None, None], 0, rows, cols][:, None]


class RandomErasing:
    """With probability ``p``, blank a random ``size`` x ``size`` square of each image."""

    def __init__(self, p, size):
        self.p, self.size = p, size

    def __call__(self, images):
        n, _, h, w = images.shape
        top = torch.randint(0, h - self.size + 1, (n, 1, 1, 1))
        left = torch.randint(0, w - self.size + 1, (n, 1, 1, 1))
        ys, xs = torch.arange(h)[:, None], torch.arange(w)[None, :]
        square = (ys >= top) & (ys < top + self.size) & (xs >= left) & (xs < left + self.size)
        erase = square & (torch.rand(n, 1, 1, 1) < self.p)
        return images.masked_fill(erase, 0.0)


class Compose:
    def __init__(self, *steps):
        self.steps = steps

    def __call__(self, images):
        for step in self.steps:
            images = step(images)
        return images


def make_transforms(cfg):
    """The augmenting transform for training and the plain one for evaluation."""
    plain = Compose(ToUnitRange())
    augmented = Compose(ToUnitRange(), RandomShift(cfg.augment.max_shift),
                        RandomErasing(cfg.augment.erase_p, cfg.augment.erase_size))
    return augmented, plain


def make_loaders(cfg, data, generator):
    order = torch.randperm(len(data.y), generator=generator)
    n_val = int(len(order) * cfg.train.val_fraction)
    val, fit = order[:n_val], order[n_val:]
    train_set = TensorDataset(data.x[fit], data.y[fit])
    batches = BatchSampler(RandomSampler(train_set, generator=generator),
                           batch_size=cfg.train.batch_size, drop_last=False)
    # batch_size=None: the sampler hands over whole batches of rows, fetched in one go
    train_loader = DataLoader(train_set, sampler=batches, batch_size=None)
    val_loader = DataLoader(TensorDataset(data.x[val], data.y[val]), batch_size=512)
    return train_loader, val_loader


# -- model --------------------------------------------------------------------------
class MeterDigitNet(nn.Module):
    def __init__(self, width, hidden, dropout, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(2 * width * 4 * 4, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, images):
        h = torch.relu(self.conv1(images))
        h = self.pool(torch.relu(self.conv2(h)))
        h = self.dropout(torch.relu(self.fc(h.flatten(1))))
        return self.out(h)


# -- evaluation ---------------------------------------------------------------------
@torch.no_grad()
def evaluate(model, loader, transform, criterion, device):
    model.eval()
    loss, correct, count = 0.0, 0, 0
    for images, labels in loader:
        images, labels = transform(images).to(device), labels.to(device)
        logits = model(images)
        loss += criterion(logits, labels).item() * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        count += len(labels)
    return loss / count, correct / count


@torch.no_grad()
def predict(model, x):
    model.eval()
    return model(model.preprocess(x))


# -- training loop ------------------------------------------------------------------
def train(cfg, data, run):
    generator = torch.Generator().manual_seed(run.seed)
    train_loader, val_loader = make_loaders(cfg, data, generator)
    train_transform, eval_transform = make_transforms(cfg)

    model = MeterDigitNet(cfg.model.width, cfg.model.hidden, cfg.model.dropout,
                          data.num_classes)
    model = run.watch(model.to(run.device))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr,
                                  weight_decay=cfg.optimizer.weight_decay)
    criterion = nn.CrossEntropyLoss()

    step = 0
    for epoch in range(cfg.train.epochs):
        model.train()
        for images, labels in train_loader:
            images, labels = train_transform(images).to(run.device), labels.to(run.device)
            loss = criterion(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            run.log("loss/train", loss.item(), step)

        val_loss, val_accuracy = evaluate(model, val_loader, eval_transform, criterion,
                                          run.device)
        run.log("loss/val", val_loss, step)
        run.log("metric/val", val_accuracy, step)

    model.preprocess = train_transform  # shipped with the weights to the reading service
    return model
