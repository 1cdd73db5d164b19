"""Tell which of two alarm codes dominates a machine's event log, with an LSTM.

Each example is a window of 80 events, one-hot over 12 event codes, shaped (N, T, vocab):
codes 0 and 1 are the two alarms, the other ten are routine events. The label is the
alarm that occurs more often in the window, so the model has to keep a running tally
over the whole log. An embedding feeds a one-layer LSTM, and a linear head reads its
last hidden state. Training follows the classic recipe for LSTM language models: plain
SGD with momentum at a learning rate of 1.

The harness calls ``train(cfg, data, run)`` with the development split and scores the
returned model on a hidden test split through ``predict``. Try it with
``sandbox run alarm-lstm-v1``.

Healthy training: the loss starts at ln(2) = 0.69, leaves it within the first epoch or
two, ends below 0.15, and validation accuracy passes 93%.
"""

import torch
import torch.nn.functional as F
from torch import nn


# -- model --------------------------------------------------------------------------
class AlarmLSTM(nn.Module):
    def __init__(self, vocab, embed, hidden, num_classes):
        super().__init__()
        self.embed = nn.Linear(vocab, embed, bias=False)  # one-hot codes in, so a lookup
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_classes, bias=False)
        self.reset_parameters()

    def reset_parameters(self):
        """Orthogonal recurrent weights, one block per gate, scaled so a tally survives
        80 steps; gate biases at zero but the forget gate's at 1 (Jozefowicz et al.,
        2015); a zero head, so every run starts from the same uniform prediction.
        """
        hidden = self.lstm.hidden_size
        with torch.no_grad():
            for gate in self.lstm.weight_hh_l0.split(hidden):
                nn.init.orthogonal_(gate, gain=1.0)
            self.lstm.bias_ih_l0.zero_()
            self.lstm.bias_hh_l0.zero_()
            self.lstm.bias_ih_l0[hidden:2 * hidden] = 1.0
            nn.init.zeros_(self.head.weight)

    def forward(self, events):
        _, (last, _) = self.lstm(self.embed(events))
        return self.head(last[-1])


# -- evaluation ---------------------------------------------------------------------
@torch.no_grad()
def predict(model, x):
    model.eval()
    return model(x)


@torch.no_grad()
def evaluate(model, x, y):
    logits = predict(model, x)
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


# -- training loop ------------------------------------------------------------------
def train(cfg, data, run):
    generator = torch.Generator().manual_seed(run.seed)
    order = torch.randperm(len(data.y), generator=generator)
    n_val = int(len(order) * cfg.train.val_fraction)
    x, y = data.x.to(run.device), data.y.to(run.device)
    x_val, y_val = x[order[:n_val]], y[order[:n_val]]
    x_fit, y_fit = x[order[n_val:]], y[order[n_val:]]

    model = run.watch(AlarmLSTM(data.x.shape[-1], cfg.model.embed, cfg.model.hidden,
                                data.num_classes).to(run.device))
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.optimizer.lr,
                                momentum=cfg.optimizer.momentum)

    step = 0
    for epoch in range(cfg.train.epochs):
        model.train()
        for batch in torch.randperm(len(y_fit), generator=generator).split(cfg.train.batch_size):
            loss = F.cross_entropy(model(x_fit[batch]), y_fit[batch])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
            optimizer.step()
            step += 1
            run.log("loss/train", loss.item(), step)

        val_loss, val_accuracy = evaluate(model, x_val, y_val)
        run.log("loss/val", val_loss, step)
        run.log("metric/val", val_accuracy, step)
    return model
