"""Sort points into three radial shells with an MLP trained on expected accuracy.

The harness calls ``train(cfg, data, run)`` with the development split (10-D points;
the class is the shell, by distance from the origin, that a point falls in) and scores
the returned model on a hidden test split through ``predict``. Try it with
``sandbox run shells-objective-v1``.

Accuracy is what we report, so the network is trained on a smooth stand-in for it: the
expected accuracy, the mean probability the model gives the right shell. The loss logged
is 1 - expected accuracy, the expected error rate; with every shell at probability 1/3 it
starts at 2/3. Healthy training: it falls steadily and ends under 0.2, and validation
accuracy ends around 85-90%.
"""

import torch
from torch import nn


# -- data ---------------------------------------------------------------------------
def train_val_split(x, y, val_fraction, seed):
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_val = int(len(y) * val_fraction)
    return (x[order[n_val:]], y[order[n_val:]]), (x[order[:n_val]], y[order[:n_val]])


def batches(n, batch_size, generator):
    """Shuffled index batches covering every row once; the last one may be short."""
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


# -- model --------------------------------------------------------------------------
class ShellNet(nn.Module):
    def __init__(self, in_features, hidden, num_classes):
        super().__init__()
        self.hidden = nn.ModuleList([nn.Linear(in_features, hidden), nn.Linear(hidden, hidden)])
        self.act = nn.ReLU()
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, x):
        for layer in self.hidden:
            x = self.act(layer(x))
        return self.out(x)


# -- objective ----------------------------------------------------------------------
def expected_accuracy(logits, labels):
    """Mean probability given to the right class: accuracy made differentiable (higher
    is better; 1 only when every point gets all of its probability on its shell).
    """
    return logits.softmax(dim=1).gather(1, labels[:, None]).mean()


# -- evaluation ---------------------------------------------------------------------
@torch.no_grad()
def evaluate(model, x, y):
    model.eval()
    logits = model(x)
    return (1 - expected_accuracy(logits, y).item(),
            (logits.argmax(1) == y).float().mean().item())


@torch.no_grad()
def predict(model, x):
    model.eval()
    return model(x)


# -- training loop ------------------------------------------------------------------
def train(cfg, data, run):
    (x_tr, y_tr), (x_val, y_val) = train_val_split(data.x, data.y, cfg.train.val_fraction,
                                                   run.seed)
    x_tr, y_tr, x_val, y_val = (t.to(run.device) for t in (x_tr, y_tr, x_val, y_val))
    model = run.watch(ShellNet(x_tr.shape[1], cfg.model.hidden, data.num_classes)
                      .to(run.device))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optimizer.lr, betas=(0.9, 0.99))
    shuffle = torch.Generator().manual_seed(run.seed)

    step = 0
    for epoch in range(cfg.train.epochs):
        model.train()
        for rows in batches(len(y_tr), cfg.train.batch_size, shuffle):
            score = expected_accuracy(model(x_tr[rows]), y_tr[rows])
            optimizer.zero_grad()
            score.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.1)
            optimizer.step()
            step += 1
            run.log("loss/train", 1 - score.item(), step)

        val_loss, val_accuracy = evaluate(model, x_val, y_val)
        run.log("loss/val", val_loss, step)
        run.log("metric/val", val_accuracy, step)
    return model
