"""Predict a diagnosis from clinic-visit measurements with an MLP.

The harness calls ``train(cfg, data, run)`` with the development split (every visit of
the development patients; ``data.groups`` holds each visit's patient id) and scores the
returned model on a hidden test split through ``predict``. Try it with
``sandbox run data-leakage-v2``.

Diagnoses are noisy, so no model gets every visit right. Healthy training: the training
loss falls steadily, the validation loss bottoms out after a few epochs (the checkpoint
kept is the one with the lowest validation loss), and validation accuracy predicts how
the model does on new patients.
"""

import copy

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


# -- model --------------------------------------------------------------------------
def build_model(cfg, in_features, num_classes):
    hidden = 8
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
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


def predict(model, x):
    model.eval()
    return model(x)


# -- training loop ------------------------------------------------------------------
def train(cfg, data, run):
    (x_train, y_train), (x_val, y_val) = split(data, cfg.train.val_fraction, run.seed)
    x_train, y_train = x_train.to(run.device), y_train.to(run.device)
    x_val, y_val = x_val.to(run.device), y_val.to(run.device)

    model = run.watch(build_model(cfg, x_train.shape[1], data.num_classes).to(run.device))
    optimizer = build_optimizer(cfg, model)

    best_loss, best_state, best_accuracy = float("inf"), None, 0.0
    stale = 0  # epochs since the validation loss last improved
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
        if val_loss < best_loss:
            best_loss, best_accuracy = val_loss, val_accuracy
            best_state = copy.deepcopy(model.state_dict())
            stale = 0
        else:
            stale += 1
        run.log("metric/val", best_accuracy, step)
        if stale >= cfg.train.patience:  # early stopping
            break

    model.load_state_dict(best_state)
    return model
