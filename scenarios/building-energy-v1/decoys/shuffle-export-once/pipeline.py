"""Predict a building's annual energy use intensity (kWh per m2) from its floor area, age,
wall insulation, occupancy and operating hours, and the site it stands on.

The harness calls ``train(cfg, data, run)`` with the development split, the portfolio
tool's export (columns: site, floor area, year built, wall U-value, occupants per 100 m2,
operating hours per week), and scores the returned model on a hidden test split through
``predict``, in kWh/m2. Try it with ``sandbox run building-energy-v1``.

Each site has its own climate, which the model learns as a small site embedding; the
building's features go through an MLP beside it. Healthy training: the loss (MSE on the
standardised target) falls below 0.05 within two epochs and ends near 0.01; the
validation RMSE ends near 8 kWh/m2 (the meters themselves are good to about 6), within
a kWh/m2 of the hidden test.
"""

import torch
import torch.nn.functional as F
from torch import nn


# -- data ---------------------------------------------------------------------------
def held_out(n, fraction, seed):
    """A random validation mask over the rows of the export."""
    return torch.rand(n, generator=torch.Generator().manual_seed(seed)) < fraction


def site_files(sites):
    """Row indices of each site's file: the export is the sites' files, one after the
    other, as the portfolio tool writes them."""
    return [torch.nonzero(sites == site).flatten() for site in sites.unique()]


def epoch_batches(files, batch_size, generator):
    """One epoch of batches, read a file at a time the way the loader for the full
    portfolio must (it does not fit in memory): the files in a random order, each file's
    rows shuffled.
    """
    for k in torch.randperm(len(files), generator=generator).tolist():
        rows = files[k][torch.randperm(len(files[k]), generator=generator)]
        yield from rows.split(batch_size)


def building_features(x):
    """Numeric features: log floor area, age, U-value, log occupancy, hours per week."""
    return torch.stack([x[:, 1].log(), (x[:, 2] - 1985) / 20, x[:, 3], x[:, 4].log(),
                        x[:, 5] / 168], 1)


# -- model --------------------------------------------------------------------------
class EnergyModel(nn.Module):
    """Site embedding next to standardised building features, then an MLP. It holds the
    feature and target statistics as buffers, so it answers in kWh/m2."""

    def __init__(self, n_sites, site_dim, hidden, features, targets):
        super().__init__()
        self.register_buffer("f_mean", features.mean(0))
        self.register_buffer("f_std", features.std(0))
        self.register_buffer("y_mean", targets.mean())
        self.register_buffer("y_std", targets.std())
        self.site = nn.Embedding(n_sites, site_dim)
        self.mlp = nn.Sequential(nn.Linear(site_dim + features.shape[1], hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        h = (building_features(x) - self.f_mean) / self.f_std
        h = torch.cat([self.site(x[:, 0].long()), h], 1)
        return self.mlp(h).squeeze(1) * self.y_std + self.y_mean


@torch.no_grad()
def predict(model, x):
    model.eval()
    return model(x).unsqueeze(1)


@torch.no_grad()
def rmse(model, x, y):
    model.eval()
    return (model(x) - y).pow(2).mean().sqrt().item()


# -- training loop ------------------------------------------------------------------
def train(cfg, data, run):
    val = held_out(len(data.y), cfg.train.val_fraction, run.seed)
    x, y = data.x.to(run.device), data.y.to(run.device)
    mixed = torch.randperm(len(y), generator=torch.Generator().manual_seed(run.seed))
    x, y, val = x[mixed], y[mixed], val[mixed]
    x_fit, y_fit, x_val, y_val = x[~val], y[~val], x[val], y[val]
    n_sites = int(x[:, 0].max()) + 1
    model = run.watch(EnergyModel(n_sites, cfg.model.site_dim, cfg.model.hidden,
                                  building_features(x_fit), y_fit).to(run.device))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr,
                                  weight_decay=cfg.optimizer.weight_decay)
    files = site_files(x_fit[:, 0].cpu())
    generator, step = torch.Generator().manual_seed(run.seed), 0
    for epoch in range(cfg.train.epochs):
        model.train()
        for rows in epoch_batches(files, cfg.train.batch_size, generator):
            rows = rows.to(run.device)
            loss = F.mse_loss(model(x_fit[rows]) / model.y_std, y_fit[rows] / model.y_std)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            run.log("loss/train", loss.item(), step)
        run.log("metric/val", rmse(model, x_val, y_val), step)
    return model
