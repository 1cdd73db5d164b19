"""Hour-ahead forecast of the grid's electricity demand.

The harness calls ``train(cfg, data, run)`` with the development split, 100 days of hours
in time order, and scores the returned model on the hours that follow through
``predict``. Try it with ``sandbox run grid-forecast-v1``.

Each row is one hour: ``[hour of day, day of week, temperature, demand 1 h ago, demand 2 h
ago, ..., demand 24 h ago]``, the request the dispatch desk sends an hour ahead; the
target is the demand that hour (MW). The network sees the calendar, the temperature, the
last metered hour and the recent level of demand (a rolling mean). The last ``val_hours``
hours are held out for validation, in time order: no shuffling across the split.
Healthy training: the Huber loss on standardised demand falls below 0.02 within a few
epochs; validation MAE ends near 1.1 MW, close to what the desk sees in the weeks that
follow.
"""

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

HOUR, WEEKDAY, TEMPERATURE, METERED = 0, 1, 2, 3  # METERED: first of the lagged columns


# -- features -----------------------------------------------------------------------
def rolling_mean(series, window):
    """Mean demand over the last ``window`` hours, one value per hour of ``series``."""
    smoothed = F.avg_pool1d(series.view(1, 1, -1), window, stride=1, padding=window // 2,
                            count_include_pad=False)
    smoothed = smoothed.view(-1)[:len(series)]
    # the centred mean at hour t - window // 2 covers hours t - window .. t - 1
    shift = window - window // 2
    return torch.cat([smoothed[:1].expand(shift), smoothed[:-shift]])


def recent_level(x, window):
    """The same rolling mean, from the readings a request carries."""
    return x[:, METERED:METERED + window].mean(dim=1)


class Scaler(nn.Module):
    """Demand in and out of standard units; kept as buffers so it ships with the model."""

    def __init__(self, demand):
        super().__init__()
        self.register_buffer("mean", demand.mean())
        self.register_buffer("std", demand.std())

    def forward(self, megawatts):
        return (megawatts - self.mean) / self.std


# -- model --------------------------------------------------------------------------
class HourAheadNet(nn.Module):
    def __init__(self, scaler, window, hidden):
        super().__init__()
        self.scaler, self.window = scaler, window
        self.body = nn.Sequential(nn.Linear(9, hidden), nn.SiLU(),
                                  nn.Linear(hidden, hidden), nn.SiLU(),
                                  nn.Linear(hidden, 1))

    def features(self, x, level):
        angle = 2 * math.pi * x[:, HOUR] / 24
        return torch.stack([
            torch.sin(angle), torch.cos(angle), torch.sin(2 * angle), torch.cos(2 * angle),
            (x[:, WEEKDAY] >= 5).float(),
            (x[:, TEMPERATURE] - 15) / 6,
            ((x[:, TEMPERATURE] - 17).abs() - 4) / 3,  # heating or cooling degrees
            self.scaler(x[:, METERED]),
            self.scaler(level),
        ], dim=1)

    def forward(self, x, level=None):
        """Standardised demand; ``level`` defaults to the request's own rolling mean."""
        if level is None:
            level = recent_level(x, self.window)
        return self.body(self.features(x, level)).squeeze(-1)

    def megawatts(self, x, level=None):
        return self(x, level) * self.scaler.std + self.scaler.mean


# -- training -----------------------------------------------------------------------
@torch.no_grad()
def evaluate(model, x, level, y):
    """Huber loss in standard units and MAE in MW."""
    model.eval()
    predicted = model(x, level)
    loss = F.huber_loss(predicted, model.scaler(y), delta=1.0).item()
    return loss, (predicted * model.scaler.std + model.scaler.mean - y).abs().mean().item()


def train(cfg, data, run):
    x, y = data.x.to(run.device), data.y.to(run.device)
    level = rolling_mean(y, cfg.features.window)  # the whole history at once
    fit, val = slice(0, len(y) - cfg.train.val_hours), slice(len(y) - cfg.train.val_hours, None)

    model = HourAheadNet(Scaler(y), cfg.features.window, cfg.model.hidden).to(run.device)
    model = run.watch(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr,
                                  weight_decay=cfg.optimizer.weight_decay)
    steps_per_epoch = math.ceil((len(y) - cfg.train.val_hours) / cfg.train.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.optimizer.lr, total_steps=cfg.train.epochs * steps_per_epoch)

    x_fit, level_fit, y_fit = x[fit], level[fit], model.scaler(y[fit])
    best = (float("inf"), None)
    stale, step = 0, 0
    for epoch in range(cfg.train.epochs):
        model.train()
        for batch in torch.randperm(len(y_fit), device=run.device).split(cfg.train.batch_size):
            loss = F.huber_loss(model(x_fit[batch], level_fit[batch]), y_fit[batch], delta=1.0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            run.log("loss/train", loss.item(), step)
            run.log("lr", schedule.get_last_lr()[0], step)

        val_loss, mae = evaluate(model, x[val], level[val], y[val])
        run.log("loss/val", val_loss, step)
        if mae < best[0]:
            best, stale = (mae, copy.deepcopy(model.state_dict())), 0
        else:
            stale += 1
        run.log("metric/val", best[0], step)
        if stale >= cfg.train.patience:
            break

    model.load_state_dict(best[1])
    return model


def predict(model, x):
    model.eval()
    return model.megawatts(x)
