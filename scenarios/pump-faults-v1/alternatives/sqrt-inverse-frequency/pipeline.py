"""Flag pump faults from the vibration features the edge boxes send every second.

Each row describes a one-second window of a pump's accelerometer: shaft speed, load,
the log amplitudes at 1x and 2x running speed and in the axial direction, the
high-frequency envelope energy, kurtosis, bearing temperature and the overall RMS.
The label is the pump's state: 0 healthy, 1 unbalance, 2 misalignment, 3 bearing wear.
Faults are rare (a few percent of the fleet's windows), so the loss weights the classes
(``train.balance_classes``). A small MLP on standardised features classifies them.

The harness calls ``train(cfg, data, run)`` with the development split and scores the
returned model on a hidden test split through ``predict``. Try it with
``sandbox run pump-faults-v1``.

Healthy training: the loss falls from about 1.4 to under 0.4 within the first epoch and
ends around 0.2, and every fault type is caught on most of its windows: balanced
accuracy (the mean of the four per-class recalls) passes 85% on validation.
"""

import torch
from torch import nn

FEATURES = ("speed", "load", "log_1x", "log_2x", "log_axial", "log_envelope", "kurtosis",
            "bearing_temp", "log_rms")


# -- data ---------------------------------------------------------------------------
def split(num_rows, val_fraction, seed):
    """Row indices of a random train/validation split."""
    order = torch.randperm(num_rows, generator=torch.Generator().manual_seed(seed))
    n_val = int(num_rows * val_fraction)
    return order[n_val:], order[:n_val]


def minibatches(rows, batch_size, generator):
    """The rows in a fresh random order, ``batch_size`` at a time."""
    return rows[torch.randperm(len(rows), generator=generator)].split(batch_size)


def class_weights(labels, num_classes):
    """One loss weight per class, from the label counts of the training rows."""
    counts = torch.bincount(labels, minlength=num_classes).float()
    # Square root of the inverse frequency: rare classes weigh more, but a class 64 times
    # rarer gets 8 times the weight, not 64 (gentler on the noisy rare labels).
    return (counts.sum() / (num_classes * counts)).sqrt()


# -- model --------------------------------------------------------------------------
class FaultMLP(nn.Module):
    def __init__(self, train_x, hidden, num_classes):
        super().__init__()
        self.register_buffer("center", train_x.mean(0))
        self.register_buffer("scale", train_x.std(0))
        self.layers = nn.Sequential(
            nn.Linear(train_x.shape[1], hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x):
        return self.layers((x - self.center) / self.scale)


# -- evaluation ---------------------------------------------------------------------
@torch.no_grad()
def evaluate(model, criterion, x, y):
    model.eval()
    logits = model(x)
    predicted = logits.argmax(1)
    # Balanced accuracy, the mean per-class recall: what production needs. Plain accuracy
    # is 95% for a model that calls every pump healthy.
    recalls = [(predicted[y == k] == k).float().mean() for k in y.unique()]
    return criterion(logits, y).item(), torch.stack(recalls).mean().item()


@torch.no_grad()
def predict(model, x):
    model.eval()
    return model(x)


# -- training loop ------------------------------------------------------------------
def train(cfg, data, run):
    train_rows, val_rows = split(len(data.y), cfg.train.val_fraction, run.seed)
    x_train, y_train = data.x[train_rows].to(run.device), data.y[train_rows].to(run.device)
    x_val, y_val = data.x[val_rows].to(run.device), data.y[val_rows].to(run.device)

    model = run.watch(FaultMLP(x_train, cfg.model.hidden, data.num_classes).to(run.device))
    weight = class_weights(y_train, data.num_classes) if cfg.train.balance_classes else None
    criterion = nn.CrossEntropyLoss(weight=weight)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.optimizer.lr,
                                momentum=cfg.optimizer.momentum, nesterov=True,
                                weight_decay=cfg.optimizer.weight_decay)
    shuffle = torch.Generator().manual_seed(run.seed)

    step = 0
    for epoch in range(cfg.train.epochs):
        model.train()
        for rows in minibatches(torch.arange(len(y_train)), cfg.train.batch_size, shuffle):
            loss = criterion(model(x_train[rows]), y_train[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            run.log("loss/train", loss.item(), step)

        val_loss, val_metric = evaluate(model, criterion, x_val, y_val)
        run.log("loss/val", val_loss, step)
        run.log("metric/val", val_metric, step)
    return model
