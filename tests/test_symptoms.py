"""Each symptom rule on curves built by hand: it fires on the pathology, not on health."""

from __future__ import annotations

import math

from sandbox import symptoms


def steps(values):
    return [(i + 1, float(v)) for i, v in enumerate(values)]


HEALTHY = {"loss/train": steps([2.3 * 0.97 ** i + 0.05 for i in range(200)]),
           "metric/val": steps([0.9]), "test/metric": steps([0.88]),
           "grad_norm/net.0": steps([0.5] * 20), "grad_norm/net.2": steps([1.0] * 20),
           "grad_norm/net.10": steps([1.5] * 20), "grad_norm/global": steps([2.0] * 20),
           "serve/batch_dependence": steps([0.0]),
           "update_ratio/net.0": steps([2e-3] * 20), "update_ratio/net.10": steps([5e-3] * 20)}


def test_a_healthy_run_shows_no_symptom():
    assert {name: rule(HEALTHY) for name, rule in symptoms.RULES.items()} == dict.fromkeys(
        symptoms.RULES)


def test_diverging():
    series = {"loss/train": steps([2.3, 5.0, 80.0, math.inf])}
    assert symptoms.diverging(series) == "loss/train became inf at step 4"


def test_not_learning():
    series = {"loss/train": steps([1.1] * 100)}
    assert "100% of its start" in symptoms.not_learning(series)


def test_vanishing_gradients_uses_layer_order_not_string_order():
    series = {**HEALTHY, "grad_norm/net.0": steps([1e-6] * 20),
              "grad_norm/net.10": steps([1e-2] * 20)}
    assert symptoms.vanishing_gradients(series).startswith("grad_norm/net.0 / grad_norm/net.10")
    only_middle_small = {**HEALTHY, "grad_norm/net.2": steps([1e-9] * 20)}
    assert symptoms.vanishing_gradients(only_middle_small) is None


def test_exploding_gradients():
    series = {"grad_norm/global": steps([1.0, 10.0, 500.0])}
    assert symptoms.exploding_gradients(series) == "grad_norm/global rose from 1 to 500"


def test_large_updates():
    series = {**HEALTHY, "update_ratio/net.10": steps([0.3, 0.5, 0.9])}
    assert symptoms.large_updates(series) == ("update_ratio/net.10 has a median of 0.5, "
                                              "above 0.1 (healthy is about 1e-3)")


def test_optimistic_validation_and_batch_dependence():
    series = {**HEALTHY, "metric/val": steps([0.98]), "test/metric": steps([0.70]),
              "serve/batch_dependence": steps([0.25])}
    assert symptoms.optimistic_validation(series) == "metric/val 0.980 vs hidden test/metric 0.700"
    assert symptoms.eval_batch_dependence(series).startswith("25%")
