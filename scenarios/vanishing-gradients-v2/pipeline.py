"""Classify points by which radial shell they lie in, with a deep MLP.

The harness calls ``train(cfg, data, run)`` with the development split and scores the
returned model on a hidden test split through ``predict``. Try it with
``sandbox run vanishing-gradients-v2``.

The classes are concentric shells around the origin, so no linear model beats chance
(33%) and a network has to learn the radius. Healthy training: the loss leaves ln(3) =
1.10 within the first epoch and falls below 0.3; validation accuracy passes 85%.
"""

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


# -- data ---------------------------------------------------------------------------
def split(data, val_fraction, seed):
    """Random train/validation split of the development data."""
    order = torch.randperm(len(data.y), generator=torch.Generator().manual_seed(seed))
    n_val = int(len(order) * val_fraction)
    val, tr = order[:n_val], order[n_val:]
    return (data.x[tr], data.y[tr]), (data.x[val], data.y[val])


# -- model --------------------------------------------------------------------------
def build_model(cfg, in_features, num_classes):
    layers, width = [], in_features
    for _ in range(cfg.model.depth):
        layers += [nn.Linear(width, cfg.model.width), ACTIVATIONS[cfg.model.activation]()]
        width = cfg.model.width
    layers.append(nn.Linear(width, num_classes))
    model = nn.Sequential(*layers)
    init_weights(model, cfg.model.init)
    return model


def init_weights(model, scheme):
    for module in model.modules():
        if isinstance(module, nn.Linear):
            if scheme == "normal":
                nn.init.normal_(module.weight, std=0.02)
            elif scheme == "xavier":
                nn.init.xavier_uniform_(module.weight)
            elif scheme == "kaiming":
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)


# -- optimisation -------------------------------------------------------------------
def build_optimizer(cfg, model):
    return torch.optim.SGD(model.parameters(), lr=cfg.optimizer.lr,
                           momentum=cfg.optimizer.momentum)


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
