"""Row tracing: which development rows a model trained on and which it only evaluated,
through the loop styles real training scripts use.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

from sandbox.harness.tracing import Rows, Tracer, plain, rows_of, tag

N = 64


@pytest.fixture
def x() -> torch.Tensor:
    return tag(torch.randn(N, 5), torch.arange(N))


@pytest.fixture
def tracer():
    traced = Tracer(N)
    traced.install()
    yield traced
    traced.remove()


def step(model: nn.Module, xb: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    loss = model(xb).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def model_and_optimizer() -> tuple[nn.Module, torch.optim.Optimizer]:
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    return model, torch.optim.SGD(model.parameters(), lr=0.01)


@pytest.mark.parametrize("select, expected", [
    (lambda x: x[3:7], [3, 4, 5, 6]),
    (lambda x: x[torch.tensor([9, 2, 2])], [9, 2, 2]),
    (lambda x: x[torch.arange(N) % 16 == 0], [0, 16, 32, 48]),
    (lambda x: x[[5, 1]], [5, 1]),
    (lambda x: x[np.array([8, 7])], [8, 7]),
    (lambda x: (x[:4] - x.mean(0)) / x.std(0), [0, 1, 2, 3]),
    (lambda x: x.flip(0)[:2], [63, 62]),
    (lambda x: torch.cat([x[10:12], x[:1]]), [10, 11, 0]),
    (lambda x: torch.stack([x[4], x[6]]), [4, 6]),
    (lambda x: x.index_select(0, torch.tensor([1, 3])), [1, 3]),
    (lambda x: x.to(torch.float64)[2:4].view(2, 5), [2, 3]),
    (lambda x: x.split(16)[2][:2], [32, 33]),
    (lambda x: torch.roll(x, 1, 0)[:2], [63, 0]),
])
def test_rows_follow_indexing_and_row_wise_ops(x, select, expected):
    out = select(x)
    assert isinstance(out, Rows)
    assert rows_of(out).tolist() == expected


@pytest.mark.parametrize("mixing", [
    lambda x: x.T, lambda x: x.reshape(-1), lambda x: x.mean(0), lambda x: x.sort(dim=0).values,
    lambda x: torch.stack([x[:4], x[4:8]]),
])
def test_ops_that_mix_rows_drop_the_trace(x, mixing):
    assert not isinstance(mixing(x), Rows)


def test_a_model_gets_plain_tensors_and_trained_rows_are_recorded(x, tracer):
    model, optimizer = model_and_optimizer()
    seen = []
    model[0].register_forward_pre_hook(lambda m, args: seen.append(type(args[0])))
    step(model, x[:16], optimizer)
    with torch.no_grad():
        model(x[40:50])
    tracer.finish()
    assert seen == [torch.Tensor, torch.Tensor]
    assert tracer.trained.nonzero().flatten().tolist() == list(range(16))
    assert tracer.validated.nonzero().flatten().tolist() == list(range(40, 50))
    assert (tracer.traced_samples, tracer.backward_passes) == (16, 1)


def test_an_evaluation_without_no_grad_is_not_training(x, tracer):
    model, optimizer = model_and_optimizer()
    step(model, x[:8], optimizer)
    accuracy = model(x[8:12]).argmax(1)  # grad enabled, never backpropagated
    tracer.finish()
    assert accuracy.shape == (4,)
    assert tracer.validated.nonzero().flatten().tolist() == [8, 9, 10, 11]


def test_evaluating_training_rows_again_does_not_make_them_validation(x, tracer):
    model, optimizer = model_and_optimizer()
    step(model, x[:8], optimizer)
    with torch.no_grad():
        model(x[:8])
    tracer.finish()
    assert not tracer.validated.any()


def test_a_dataloader_over_a_tensor_dataset_and_random_split(x, tracer):
    model, optimizer = model_and_optimizer()
    dataset = TensorDataset(x, torch.zeros(N))
    train, val = random_split(dataset, [48, 16], generator=torch.Generator().manual_seed(0))
    for xb, _ in DataLoader(train, batch_size=10, shuffle=True):
        step(model, xb, optimizer)
    with torch.no_grad():
        for xb, _ in DataLoader(val, batch_size=16):
            model(xb)
    tracer.finish()
    assert sorted(tracer.trained.nonzero().flatten().tolist()) == sorted(train.indices)
    assert sorted(tracer.validated.nonzero().flatten().tolist()) == sorted(val.indices)
    assert tracer.traced_samples == 48 and tracer.backward_passes == 5


def test_samples_count_every_backward_pass_lbfgs_included(x, tracer):
    model, _ = model_and_optimizer()
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=5)

    def closure():
        optimizer.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        return loss

    optimizer.step(closure)
    assert tracer.backward_passes > 1
    assert tracer.traced_samples == N * tracer.backward_passes


def test_hand_written_updates_are_counted(x, tracer):
    model, _ = model_and_optimizer()
    for rows in torch.arange(N).split(16):
        loss = model(x[rows]).pow(2).mean()
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads, strict=True):
                p -= 0.1 * g
    assert tracer.traced_samples == N and tracer.backward_passes == 4


def test_inputs_copied_through_numpy_are_counted_untraced(x, tracer):
    model, optimizer = model_and_optimizer()
    copied = torch.from_numpy(plain(x).numpy().copy())
    step(model, copied[:20], optimizer)
    assert (tracer.traced_samples, tracer.untraced_samples) == (0, 20)


def test_inner_modules_do_not_count_twice(x, tracer):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten, self.body = nn.Flatten(), nn.Sequential(nn.Linear(5, 3), nn.Tanh())

        def forward(self, inputs):
            return self.body(self.flatten(inputs))

    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    step(model, x[:12], optimizer)
    assert tracer.traced_samples == 12


def test_tracing_changes_no_number(x):
    torch.manual_seed(0)
    model, _ = model_and_optimizer()
    traced_model = nn.Sequential(*[m for m in model])  # same weights
    plain_out = model(plain(x)).detach()
    tracer = Tracer(N)
    tracer.install()
    try:
        assert torch.equal(traced_model(x).detach(), plain_out)
        assert torch.equal(F.softmax(plain(x), 1), plain(F.softmax(x, 1)))
    finally:
        tracer.remove()


def test_one_traced_op_is_one_propagation(x, monkeypatch):
    from sandbox.harness import tracing
    calls = []
    original = tracing._propagate
    monkeypatch.setattr(tracing, "_propagate", lambda *a: calls.append(a[0]) or original(*a))
    out = (x * 2).flip(0)
    assert len(calls) == 2 and rows_of(out)[0] == N - 1  # reading .ndim inside does not recurse


def test_calls_that_bypass_module_hooks_are_still_traced(x, tracer):
    model, optimizer = model_and_optimizer()
    linear = model[0]
    for rows, call in [(slice(0, 8), lambda xb: model(input=xb)),       # a keyword argument
                       (slice(8, 16), lambda xb: model.forward(xb)),    # no __call__ at the top
                       (slice(16, 24), lambda xb: F.linear(xb, linear.weight, linear.bias))]:
        loss = call(x[rows]).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
    tracer.finish()
    assert tracer.trained.nonzero().flatten().tolist() == list(range(24))
    assert tracer.traced_samples == 24 and tracer.backward_passes == 3


def test_a_skip_connection_from_the_input_is_one_sample(x, tracer):
    weight = torch.randn(5, 5, requires_grad=True)
    xb = x[:10]
    (xb @ weight + xb).sum().backward()  # the input meets the weights, then the sum
    assert tracer.traced_samples == 10


def test_rows_laundered_through_numpy_and_cat_are_untraced(x, tracer):
    model, optimizer = model_and_optimizer()
    laundered = torch.cat([x[:0], torch.from_numpy(plain(x).numpy().copy())])
    step(model, laundered[:20], optimizer)
    with torch.no_grad():
        model(laundered[20:30])
    tracer.finish()
    assert (tracer.traced_samples, tracer.untraced_samples) == (0, 20)
    assert tracer.untraced_evaluated == 10 and not tracer.trained.any()


def test_a_hook_on_the_models_output_is_noticed(x, tracer):
    model, _ = model_and_optimizer()
    out = model(x[:8])
    out.register_hook(lambda g: g * 0.01)
    out.pow(2).mean().backward()
    assert tracer.foreign_output_hooks == 1


def test_a_tensor_cast_to_rows_by_hand_counts_as_untraced(tracer):
    model, optimizer = model_and_optimizer()
    forged = torch.randn(12, 5).as_subclass(Rows)  # no row ids of the harness's
    step(model, forged, optimizer)
    assert (tracer.traced_samples, tracer.untraced_samples) == (0, 12)
