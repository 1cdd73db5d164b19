"""Classify token sequences by their most frequent marker with a one-block token mixer.

Each example is a sequence of one-hot tokens shaped (N, T, vocab); its label is the
marker token (ids 0..3) that occurs most often, the other ids being filler. The model
embeds the tokens, mixes them with one MLP-Mixer block (a token-mixing layer across
positions, then a channel MLP), sums over positions and classifies. It is trained with
SGD and momentum on micro-batches of ``train.batch_size`` sequences, with
``train.accumulate`` micro-batches per optimizer step, so each step sees
``batch_size * accumulate`` sequences whatever fits in device memory.

The harness calls ``train(cfg, data, run)`` with the development split and scores the
returned model on a hidden test split through ``predict``. Try it with
``sandbox run majority-mixer-v1``.

Healthy training: the loss starts around 2-3 (summed features give large first logits),
falls below 1.0 within about 30 optimizer steps and ends between 0.3 and 0.45;
validation accuracy passes 78%. Ties between the most frequent markers cap the best
possible accuracy near 84%.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset


# -- data ---------------------------------------------------------------------------
class TokenSequences(Dataset):
    """(sequence, label) pairs over some rows of the development split."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def make_loaders(data, cfg, seed):
    """Random train/validation split; the training loader yields micro-batches."""
    order = torch.randperm(len(data.y), generator=torch.Generator().manual_seed(seed))
    n_val = int(len(order) * cfg.train.val_fraction)
    val, tr = order[:n_val], order[n_val:]
    train_loader = DataLoader(TokenSequences(data.x[tr], data.y[tr]),
                              batch_size=cfg.train.batch_size, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(seed))
    val_loader = DataLoader(TokenSequences(data.x[val], data.y[val]), batch_size=256)
    return train_loader, val_loader


# -- model --------------------------------------------------------------------------
class MajorityMixer(nn.Module):
    def __init__(self, vocab, length, dim, num_classes):
        super().__init__()
        # A linear map of one-hot tokens is an embedding lookup; like nn.Embedding, no bias.
        self.embed = nn.Linear(vocab, dim, bias=False)
        self.norm1 = nn.LayerNorm(dim)
        self.token_mix = nn.Linear(length, length)
        self.norm2 = nn.LayerNorm(dim)
        self.channel_mix = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(),
                                         nn.Linear(2 * dim, dim))
        self.head = nn.Linear(dim, num_classes)

    def forward(self, tokens):
        h = self.embed(tokens)                                      # (N, T, dim)
        mixed = self.token_mix(self.norm1(h).transpose(1, 2))      # mix across positions
        h = h + mixed.transpose(1, 2)
        h = h + self.channel_mix(self.norm2(h))
        # The label is a count, so pool by summing over positions rather than averaging.
        return self.head(h.sum(dim=1))


# -- optimisation -------------------------------------------------------------------
def build_optimizer(cfg, model):
    return torch.optim.SGD(model.parameters(), lr=cfg.optimizer.lr,
                           momentum=cfg.optimizer.momentum,
                           weight_decay=cfg.optimizer.weight_decay)


# -- evaluation ---------------------------------------------------------------------
@torch.no_grad()
def evaluate(model, loader, device):
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        total_loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(dim=1) == y).sum().item()
        seen += len(y)
    return total_loss / seen, correct / seen


@torch.no_grad()
def predict(model, x):
    model.eval()
    return model(x)


# -- training loop ------------------------------------------------------------------
def train_one_epoch(model, loader, optimizer, cfg, run, step):
    """One pass over the training loader; returns the optimizer step count."""
    model.train()
    accumulate = 1  # step on every micro-batch
    optimizer.zero_grad(set_to_none=True)
    running = 0.0
    for i, (x, y) in enumerate(loader):
        x, y = x.to(run.device), y.to(run.device)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        running += loss.item()
        if (i + 1) % accumulate == 0:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            run.log("loss/train", running / accumulate, step)
            running = 0.0
    return step


def train(cfg, data, run):
    train_loader, val_loader = make_loaders(data, cfg, run.seed)
    _, length, vocab = data.x.shape
    model = MajorityMixer(vocab, length, cfg.model.dim, data.num_classes)
    model = run.watch(model.to(run.device))
    optimizer = build_optimizer(cfg, model)

    step = 0
    for epoch in range(cfg.train.epochs):
        step = train_one_epoch(model, train_loader, optimizer, cfg, run, step)
        val_loss, val_accuracy = evaluate(model, val_loader, run.device)
        run.log("loss/val", val_loss, step)
        run.log("metric/val", val_accuracy, step)
    return model
