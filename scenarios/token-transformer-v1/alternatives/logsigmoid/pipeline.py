"""Flag event sequences by their header with a small transformer encoder.

Each example is a sequence of one-hot event tokens shaped (N, T, vocab). One of the first
few events is a header token that says which of two services wrote the sequence (the
label); the rest is filler. The model embeds the tokens, adds learned positions, runs
them through pre-norm self-attention blocks, averages over positions and returns one
logit: "written by service 1". The forward and backward passes run under bfloat16
autocast, as on the nightly runners.

The harness calls ``train(cfg, data, run)`` with the development split and scores the
returned model on a hidden test split through ``predict``. Try it with
``sandbox run token-transformer-v1``.

Healthy training: the loss starts near ln(2) = 0.69, falls below 0.01 within about fifty
steps and keeps creeping down towards zero for the rest of the run (the task is noise
free, so a few 1e-4 by the end); validation accuracy reaches 100%.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


# -- data ---------------------------------------------------------------------------
def split(data, val_fraction, seed):
    """Seeded random train/validation split of the development sequences."""
    order = torch.randperm(len(data.y), generator=torch.Generator().manual_seed(seed))
    n_val = int(len(order) * val_fraction)
    return order[n_val:], order[:n_val]


def get_batch(x, y, batch_size, generator):
    """A random batch of sequences, drawn with replacement (nanoGPT style)."""
    rows = torch.randint(len(y), (batch_size,), generator=generator)
    return x[rows], y[rows]


# -- model --------------------------------------------------------------------------
class SelfAttention(nn.Module):
    def __init__(self, d_model, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, h):
        B, T, C = h.shape
        q, k, v = self.qkv(h).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // self.heads)
        att = att.softmax(dim=-1)
        out = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.proj(out)


class Block(nn.Module):
    def __init__(self, d_model, heads):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = SelfAttention(d_model, heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(),
                                 nn.Linear(2 * d_model, d_model))

    def forward(self, h):
        h = h + self.attn(self.ln1(h))
        return h + self.mlp(self.ln2(h))


class HeaderClassifier(nn.Module):
    def __init__(self, vocab, length, d_model, heads, layers):
        super().__init__()
        self.embed = nn.Linear(vocab, d_model, bias=False)  # one-hot in, so a lookup table
        self.pos = nn.Parameter(torch.zeros(length, d_model))
        self.blocks = nn.ModuleList(Block(d_model, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, 1)

    def forward(self, tokens):
        h = self.embed(tokens) + self.pos
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln_f(h).mean(dim=1)).squeeze(-1)


# -- loss ---------------------------------------------------------------------------
def binary_cross_entropy(logits, targets):
    """Mean negative log-likelihood of the targets under p = sigmoid(logits)."""
    # log(sigmoid(z)) and log(1 - sigmoid(z)) = log(sigmoid(-z)), straight from the logits
    return -(targets * F.logsigmoid(logits) + (1 - targets) * F.logsigmoid(-logits)).mean()


# -- optimisation -------------------------------------------------------------------
def build_optimizer(cfg, model):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.optimizer.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.optimizer.lr, betas=tuple(cfg.optimizer.betas))


# -- evaluation ---------------------------------------------------------------------
@torch.no_grad()
def evaluate(model, x, y, ctx):
    model.eval()
    with ctx():
        logits = model(x)
    loss = F.binary_cross_entropy_with_logits(logits.float(), y.float()).item()
    accuracy = ((logits > 0).long() == y).float().mean().item()
    model.train()
    return loss, accuracy


@torch.no_grad()
def predict(model, x):
    model.eval()
    logit = model(x).float()
    return torch.stack([-logit, logit], dim=1) / 2  # two class scores, argmax = sign


# -- training loop ------------------------------------------------------------------
def train(cfg, data, run):
    torch.manual_seed(run.seed)
    fit, val = split(data, cfg.train.val_fraction, run.seed)
    x_train, y_train = data.x[fit].to(run.device), data.y[fit].to(run.device)
    x_val, y_val = data.x[val].to(run.device), data.y[val].to(run.device)
    ptdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[cfg.train.dtype]
    device_type = "cuda" if "cuda" in str(run.device) else "cpu"

    def ctx():
        return torch.autocast(device_type, dtype=ptdtype, enabled=ptdtype != torch.float32)

    model = HeaderClassifier(x_train.shape[2], x_train.shape[1], cfg.model.d_model,
                             cfg.model.heads, cfg.model.layers).to(run.device)
    run.watch(model)
    optimizer = build_optimizer(cfg, model)
    generator = torch.Generator().manual_seed(run.seed)

    model.train()
    for step in range(1, cfg.train.max_steps + 1):
        xb, yb = get_batch(x_train, y_train, cfg.train.batch_size, generator)
        with ctx():
            logits = model(xb)
            loss = binary_cross_entropy(logits, yb.float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        run.log("loss/train", loss.item(), step)

        if step % cfg.train.eval_every == 0 or step == cfg.train.max_steps:
            val_loss, val_accuracy = evaluate(model, x_val, y_val, ctx)
            run.log("loss/val", val_loss, step)
            run.log("metric/val", val_accuracy, step)
    return model
