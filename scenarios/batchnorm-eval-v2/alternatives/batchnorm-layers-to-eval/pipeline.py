"""Classify 8x8 handwritten digits with a BatchNorm MLP.

The harness calls ``train(cfg, data, run)`` with the development split and scores the
returned model on a hidden test split through ``predict``, in small batches the way the
serving endpoint calls it. Try it with ``sandbox run batchnorm-eval-v2``.

Healthy training: the loss falls from ln(10) = 2.3 to below 0.2 within a few epochs,
validation accuracy passes 95%, and a prediction for an image does not depend on which
other images share its batch.
"""

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


def preprocess(x):
    """Flatten the images and scale the pixel values (0..16) to 0..1."""
    return x.flatten(1) / 16.0


# -- model --------------------------------------------------------------------------
def build_model(cfg, in_features, num_classes):
    h = cfg.model.hidden
    return nn.Sequential(
        nn.Linear(in_features, h), nn.BatchNorm1d(h), nn.ReLU(),
        nn.Linear(h, h), nn.BatchNorm1d(h), nn.ReLU(),
        nn.Linear(h, num_classes),
    )


# -- optimisation -------------------------------------------------------------------
def build_optimizer(cfg, model):
    return torch.optim.Adam(model.parameters(), lr=cfg.optimizer.lr)


# -- evaluation ---------------------------------------------------------------------
@torch.no_grad()
def evaluate(model, x, y):
    model.eval()
    logits = model(x)
    loss = F.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(1) == y).float().mean().item()
    return loss, accuracy


@torch.no_grad()
def predict(model, x):
    for module in model.modules():
        if isinstance(module, nn.BatchNorm1d):
            module.eval()  # running statistics; the rest of the model has no mode
    return model(preprocess(x))


# -- training loop ------------------------------------------------------------------
def train(cfg, data, run):
    (x_train, y_train), (x_val, y_val) = split(data, cfg.train.val_fraction, run.seed)
    x_train = preprocess(x_train).to(run.device)
    x_val = preprocess(x_val).to(run.device)
    y_train, y_val = y_train.to(run.device), y_val.to(run.device)

    model = run.watch(build_model(cfg, x_train.shape[1], data.num_classes).to(run.device))
    optimizer = build_optimizer(cfg, model)

    step = 0
    for epoch in range(cfg.train.epochs):
        model.train()
        for batch in torch.randperm(len(y_train), device=run.device).split(cfg.train.batch_size):
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            run.log("loss/train", loss.item(), step)

        val_loss, val_accuracy = evaluate(model, x_val, y_val)
        run.log("loss/val", val_loss, step)
        run.log("metric/val", val_accuracy, step)
    return model
