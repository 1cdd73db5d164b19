"""Tell a pump's running regime from its three-axis vibration signal with a 1-D CNN.

The harness calls ``train(cfg, data, run)`` with the development split (windows shaped
(N, T, C): 64 time steps of 3 channels) and scores the returned model on a hidden test
split through ``predict``. Try it with ``sandbox run sensor-conv-v1``.

Each regime has its own rhythm, buried in drift and sensor noise. The weights that are
evaluated and served are an exponential moving average (EMA) of the trained ones, which
smooths out the noise of the last steps. Healthy training: the loss starts near
ln(4) = 1.39, falls below 0.5 by the third epoch and ends under 0.2; validation accuracy
passes 90%.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset


# -- data ---------------------------------------------------------------------------
def loaders(data, cfg, seed):
    """Train and validation loaders over a seeded random split of the windows. Each
    batch is one indexing of the tensors (a BatchSampler), not a stack of single rows.
    """
    n_val = int(len(data.y) * cfg.train.val_fraction)
    order = torch.randperm(len(data.y), generator=torch.Generator().manual_seed(seed))
    val, fit = order[:n_val], order[n_val:]
    shuffle = RandomSampler(fit, generator=torch.Generator().manual_seed(seed))
    train_loader = DataLoader(TensorDataset(data.x[fit], data.y[fit]), batch_size=None,
                              sampler=BatchSampler(shuffle, cfg.train.batch_size, drop_last=True))
    val_loader = DataLoader(TensorDataset(data.x[val], data.y[val]), batch_size=None,
                            sampler=BatchSampler(range(n_val), 512, drop_last=False))
    return train_loader, val_loader


def channels_first(windows):
    """(N, T, C) -> (N, C, T), the layout Conv1d expects."""
    return windows.permute(0, 2, 1)


# -- model --------------------------------------------------------------------------
def conv_block(c_in, c_out, kernel, stride):
    return nn.Sequential(nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2),
                         nn.ReLU())


def build_model(cfg, channels, num_classes):
    width = cfg.model.width
    return nn.Sequential(
        conv_block(channels, width, 7, 1),
        conv_block(width, width, 5, 2),
        conv_block(width, width, 5, 2),
        nn.AdaptiveAvgPool1d(1),
        nn.Flatten(),
        nn.Linear(width, num_classes),
    )


# -- optimisation -------------------------------------------------------------------
def build_optimizer(cfg, model, steps):
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr,
                                  weight_decay=cfg.optimizer.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.optimizer.lr,
                                                    total_steps=steps, pct_start=0.2)
    return optimizer, scheduler


# -- evaluation ---------------------------------------------------------------------
@torch.no_grad()
def evaluate(model, loader, device):
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    for windows, labels in loader:
        windows, labels = windows.to(device), labels.to(device)
        logits = model(channels_first(windows))
        total_loss += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        seen += len(labels)
    return total_loss / seen, correct / seen


@torch.no_grad()
def predict(model, x):
    model.eval()
    return model(channels_first(x))


# -- training loop ------------------------------------------------------------------
def train(cfg, data, run):
    train_loader, val_loader = loaders(data, cfg, run.seed)
    model = build_model(cfg, data.x.shape[-1], data.num_classes).to(run.device)
    epochs = 4 * cfg.train.epochs
    optimizer, scheduler = build_optimizer(cfg, model, epochs * len(train_loader))
    model = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema_decay))
    run.watch(model)

    step = 0
    for epoch in range(epochs):
        model.train()
        for windows, labels in train_loader:
            windows, labels = windows.to(run.device), labels.to(run.device)
            loss = F.cross_entropy(model(channels_first(windows)), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            model.update_parameters(model.module)
            step += 1
            run.log("loss/train", loss.item(), step)

        val_loss, val_accuracy = evaluate(model, val_loader, run.device)
        run.log("loss/val", val_loss, step)
        run.log("metric/val", val_accuracy, step)
    return model
