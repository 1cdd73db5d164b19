"""The diagnoser on curves built by hand and written with plain ``SummaryWriter``: under
the tag names people use, healthy runs get no finding and each pathology gets its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from torch.utils.tensorboard import SummaryWriter

from sandbox.diagnosis import NoEventFiles, diagnose, diagnose_scalars
from sandbox.diagnosis.tags import curves, words

from .conftest import run_cli

N = 400


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def noisy(base: np.ndarray, noise: float, seed: int = 0) -> np.ndarray:
    """Minibatch noise: independent, multiplicative, heavy-ish tailed."""
    return base * np.exp(noise * rng(seed).standard_normal(len(base)))


def decay(n: int = N, start: float = 2.3, end: float = 0.1) -> np.ndarray:
    return end + (start - end) * np.exp(-np.arange(n) / (n / 6))


def step_lr(n: int = N) -> np.ndarray:
    """Loss under a step schedule: a plateau, then a sudden drop at each decay."""
    t = np.arange(n)
    return (0.3 + 2.0 * np.exp(-t / 40)) * np.where(t < n // 2, 1.0, 0.4) * np.where(
        t < 3 * n // 4, 1.0, 0.5)


def sawtooth(n: int = N, period: int = 12) -> np.ndarray:
    """Class-sorted data: a jump whenever the next class block starts, then adaptation."""
    return 0.4 + 2.0 * np.exp(-(np.arange(n) % period) / 2.5)


def write(folder: Path, series: dict[str, np.ndarray | list[float]], every: int = 1) -> Path:
    writer = SummaryWriter(str(folder))
    for tag, values in series.items():
        stride = every if "val" in tag.lower() or "eval" in tag.lower() else 1
        for i, value in enumerate(values):
            writer.add_scalar(tag, float(value), (i + 1) * stride)
    writer.close()
    return folder


def symptoms_in(folder: Path) -> set[str]:
    [run] = diagnose(folder)
    return {f.symptom for f in run.findings}


def val_curve(train: np.ndarray, every: int, turn: float | None = None) -> np.ndarray:
    points = train[every - 1::every] * 1.1 + 0.05
    if turn is not None:  # overfitting: up again after the turn
        k = int(len(points) * turn)
        points[k:] = points[k] + np.linspace(0, 0.8, len(points) - k)
    return points


HEALTHY: dict[str, Callable[[], dict[str, np.ndarray]]] = {
    "Loss/train": lambda: {"Loss/train": noisy(decay(), 0.2),
                           "Loss/val": val_curve(decay(), 40)},
    "train_loss small batch": lambda: {"train_loss": noisy(decay(), 0.6),
                                       "val_loss": val_curve(decay(), 40)},
    "training/loss step lr": lambda: {"training/loss": noisy(step_lr(), 0.15),
                                      "validation/loss": val_curve(step_lr(), 25)},
    "hugging face": lambda: {"train/loss": noisy(decay(), 0.1),
                             "eval/loss": val_curve(decay(), 50),
                             "train/learning_rate": np.linspace(1e-3, 0, N)},
}


@pytest.mark.parametrize("case", HEALTHY)
def test_healthy_runs_get_no_finding(case: str, tmp_path: Path):
    assert symptoms_in(write(tmp_path / "run", HEALTHY[case]())) == set()


def healthy_then_nan(n: int = 300, at: int = 220) -> list[float]:
    """A hand-written log(softmax): fine until the model is confident, then log(0)."""
    values = list(noisy(decay(n, end=0.05), 0.2)[:at])
    return values + [math.nan] * (n - at)


def milestones_per_batch(n: int = N) -> dict[str, np.ndarray]:
    """MultiStepLR(milestones=[10, 20]) meant as epochs, stepped every batch."""
    lr = 0.1 * np.where(np.arange(n) < 10, 1.0, 0.1) * np.where(np.arange(n) < 20, 1.0, 0.1)
    loss = 1.0 + 1.3 * np.exp(-np.minimum(np.arange(n), 20) / 15)  # falls, then stalls
    return {"train/loss": noisy(loss, 0.05), "train/lr": lr}


PATHOLOGIES: dict[str, tuple[set[str], Callable[[], dict[str, np.ndarray | list[float]]]]] = {
    "nan": ({"diverging"}, lambda: {"Loss/train": [2.3, 2.8, 4.1, 9.0, math.nan]}),
    "rising": ({"diverging", "rising-loss"},
               lambda: {"loss": noisy(np.geomspace(2.3, 40, 100), 0.1)}),
    "rising slowly": ({"rising-loss"},
                      lambda: {"loss": noisy(np.linspace(0.69, 1.2, 300), 0.1)}),
    "nan after progress": ({"sudden-nan"}, lambda: {"train_loss": healthy_then_nan()}),
    "flat at chance": ({"not-learning"},
                       lambda: {"train_loss": np.log(10) + 0.02 * rng().standard_normal(300)}),
    "sawtooth": ({"oscillating"}, lambda: {"loss/train": noisy(sawtooth(), 0.05)}),
    "overfitting": ({"overfitting"}, lambda: {
        "Loss/train": noisy(decay(), 0.1),
        "Loss/val": val_curve(decay(), 20, turn=0.4)}),
    "lr collapse": ({"lr-collapse"}, milestones_per_batch),
}


@pytest.mark.parametrize("case", PATHOLOGIES)
def test_each_pathology_is_named(case: str, tmp_path: Path):
    symptoms, make = PATHOLOGIES[case]
    assert symptoms_in(write(tmp_path / "run", make())) == symptoms


def test_schedules_that_end_low_or_restart_are_not_a_collapse(tmp_path: Path):
    t = np.arange(N)
    cosine = 0.05 * (1 + np.cos(np.pi * t / N)) / 2
    restarts = 0.05 * (1 + np.cos(np.pi * (t % 50) / 50)) / 2
    for name, lr in (("cosine", cosine), ("restarts", restarts)):
        run = write(tmp_path / name, {"loss/train": noisy(decay(), 0.2), "lr": lr})
        assert symptoms_in(run) == set(), name


def test_a_loss_that_blows_up_before_its_nan_is_divergence_not_a_sudden_nan(tmp_path: Path):
    blow_up = list(noisy(decay(200, end=0.2), 0.1)) + list(np.geomspace(0.3, 1e4, 30)) + [
        math.inf]
    assert symptoms_in(write(tmp_path / "run", {"loss/train": blow_up})) == {"diverging"}


def test_a_finding_has_the_step_where_it_starts(tmp_path: Path):
    [run] = diagnose(write(tmp_path, PATHOLOGIES["nan"][1]()))
    [finding] = run.findings
    assert (finding.step, finding.evidence) == (5, "Loss/train became nan at step 5")
    assert finding.causes and finding.fixes


def test_overfitting_starts_at_the_validation_minimum(tmp_path: Path):
    curves_ = PATHOLOGIES["overfitting"][1]()
    [run] = diagnose(write(tmp_path, curves_, every=20))
    [finding] = run.findings
    assert finding.step == 20 * (int(np.argmin(curves_["Loss/val"])) + 1)
    assert "Loss/val rose from its minimum" in finding.evidence


def test_noise_is_not_oscillation_even_when_it_is_large(tmp_path: Path):
    shuffled = noisy(sawtooth(), 0.05)[rng(1).permutation(N)]  # same values, no order
    assert symptoms_in(write(tmp_path / "run", {"loss/train": shuffled})) == {"not-learning"}


def test_a_short_early_stopped_rise_is_not_overfitting(tmp_path: Path):
    val = [1.0, 0.8, 0.7, 0.74, 0.78]  # patience 2 stopped it two evaluations later
    train = noisy(decay(100), 0.1)
    assert symptoms_in(write(tmp_path / "run", {"loss/train": train, "loss/val": val},
                             every=20)) == set()


def test_keras_train_and_validation_folders_make_one_run(tmp_path: Path):
    write(tmp_path / "logs" / "train", {"epoch_loss": noisy(decay(30), 0.02)})
    val = val_curve(decay(30), 1, turn=0.4)
    write(tmp_path / "logs" / "validation", {"epoch_loss": val})
    [run] = diagnose(tmp_path)
    assert run.name == "logs"
    assert [f.symptom for f in run.findings] == ["overfitting"]
    assert "validation/epoch_loss" in run.findings[0].evidence


def test_add_scalars_folders_join_their_run(tmp_path: Path):
    writer = SummaryWriter(str(tmp_path / "exp"))
    for step, loss in enumerate(noisy(decay(), 0.2), 1):
        writer.add_scalars("loss", {"train": loss}, step)
    writer.close()
    [run] = diagnose(tmp_path)
    assert run.name == "exp" and run.readable and run.findings == []


def test_every_run_below_the_folder_is_found(tmp_path: Path):
    write(tmp_path / "a" / "good", HEALTHY["Loss/train"]())
    write(tmp_path / "b" / "nan", PATHOLOGIES["nan"][1]())
    runs = {r.name: {f.symptom for f in r.findings} for r in diagnose(tmp_path)}
    assert runs == {"a/good": set(), "b/nan": {"diverging"}}


@pytest.mark.parametrize(("tag", "role"), [
    ("Loss/train", "train_loss"), ("train_loss", "train_loss"), ("training/loss", "train_loss"),
    ("loss", "train_loss"), ("trainLoss", "train_loss"), ("train_loss_step", "train_loss"),
    ("loss/val", "val_loss"), ("validation/loss", "val_loss"), ("val_loss_epoch", "val_loss"),
    ("eval/loss", "val_loss"), ("Accuracy/val", "val_metric"), ("test/metric", "test_metric"),
    ("val_acc", "val_metric"), ("test_accuracy", "test_metric"),
])
def test_tag_roles(tag: str, role: str):
    found = curves({tag: [(1, 1.0)]})
    assert found.names == {role: tag}


def test_ambiguous_or_foreign_tags_get_no_curve_role():
    found = curves({"hp_metric": [(1, 1.0)], "train_val_gap": [(1, 0.1)],
                    "lr-Adam": [(1, 1e-3)], "train/grad_norm": [(1, 2.0)]})
    assert set(found.names) == {"lr", "grad_global"}


def test_the_plainest_candidate_wins():
    found = curves({"loss/train_kl": [(1, 1.0)] * 50, "loss/train": [(1, 1.0)] * 10})
    assert found.names["train_loss"] == "loss/train"
    assert words("valLoss/epoch-2") == ["val", "loss", "epoch", "2"]


def grads(first: float, last: float, n: int = 10) -> dict[str, list[tuple[int, float]]]:
    return {"grad_norm/net.0": [(s, first) for s in range(1, n + 1)],
            "grad_norm/net.2": [(s, 0.5) for s in range(1, n + 1)],
            "grad_norm/net.10": [(s, last) for s in range(1, n + 1)]}


def test_gradient_rules_use_the_order_layers_were_written_in():
    vanishing = {"loss/train": [(1, 1.0)], **grads(1e-9, 0.5)}
    assert [f.symptom for f in diagnose_scalars(vanishing)] == ["vanishing-gradients"]
    reversed_order = dict(reversed(list(grads(1e-9, 0.5).items())))  # net.10 written first
    assert diagnose_scalars({"loss/train": [(1, 1.0)], **reversed_order}) == []


def test_exploding_gradients_and_large_updates():
    series = {"loss/train": [(s, 1.0) for s in range(1, 11)],
              "grad_norm/global": [(s, 1.0 if s < 4 else 500.0) for s in range(1, 11)],
              "update_ratio/net.0": [(s, 0.5) for s in range(1, 11)]}
    found = {f.symptom: f for f in diagnose_scalars(series)}
    assert set(found) == {"exploding-gradients", "large-updates"}
    assert found["exploding-gradients"].step == 4



def early_ratios(first: list[float], later: float, stalls: bool = True) -> dict[str, list]:
    """Layers' update ratios at the probe's cadence: ``first[i]`` for layer i over steps
    1-10, ``later`` from step 16 on. The loss stalls near its start for a third of the
    run before it creeps down (``stalls``), or falls from the first steps on."""
    steps = [1, 2, 4, 8, 16, 25, 50, 75, 100, 125, 150]
    loss = [1.4 * (0.999 ** s if s < 50 else 0.99 ** s) if stalls else 1.4 * 0.97 ** s
            for s in range(1, 151)]
    return {"loss/train": list(zip(range(1, 151), loss, strict=True)),
            **{f"update_ratio/layer{i}": [(s, early if s <= 10 else later) for s in steps]
               for i, early in enumerate(first)}}


def test_a_start_without_warmup_shows_in_the_first_steps_and_the_stall_after_them():
    no_warmup = {f.symptom: f for f in diagnose_scalars(early_ratios([0.15] * 6, 0.02))}
    assert set(no_warmup) == {"large-early-updates"}
    assert "6 of 6 layers" in no_warmup["large-early-updates"].evidence
    assert diagnose_scalars(early_ratios([0.004] * 6, 0.02)) == []  # warmed up
    # plain SGD at a high rate, or a pre-norm block: large first steps, and the loss falls
    assert diagnose_scalars(early_ratios([0.2] * 6, 0.01, stalls=False)) == []


def test_one_small_weight_moving_fast_early_is_not_a_bad_start():
    """A position embedding initialised at 0.02 moves a large fraction of itself in Adam's
    first steps even with warmup; the rule asks for the median layer."""
    assert diagnose_scalars(early_ratios([0.4, 0.005, 0.006, 0.004, 0.005], 0.02)) == []


def test_updates_too_large_all_along_are_named_once():
    found = [f.symptom for f in diagnose_scalars(early_ratios([0.5] * 4, 0.3))]
    assert found == ["large-updates"]

def test_a_burst_between_logged_steps_is_seen_through_the_running_maximum():
    logged = {"loss/train": [(s, 1.0) for s in range(1, 11)],
              "grad_norm/global": [(s, 1.0) for s in (1, 2, 4, 8, 16, 25, 50, 75, 100)]}
    assert diagnose_scalars(logged) == []
    peaks = dict(logged, **{"grad_norm/global_max": [(s, 300.0 if s == 50 else 1.0)
                                                     for s, _ in logged["grad_norm/global"]]})
    [burst] = diagnose_scalars(peaks)
    assert (burst.symptom, burst.step) == ("exploding-gradients", 50)


def cliff(spike_at: int | None, burst: float, n: int = 200) -> dict[str, list]:
    """An LSTM-like run: the norm starts at 0.2, one burst, the loss pinned near ln 2."""
    loss = [(s, 2.0 if s == spike_at else 0.69) for s in range(1, n + 1)]
    logged = [1, 2, 4, 8, 16, 25, 50, 75, 100, 125, 150, 175, 200]
    norm = [(s, 0.2 * burst if s == 8 else 0.2) for s in logged]
    return {"loss/train": loss, "grad_norm/global": norm}


def test_a_tenfold_burst_counts_only_when_the_loss_jumps_with_it():
    def exploding(run: dict[str, list]) -> list:
        return [f for f in diagnose_scalars(run) if f.symptom == "exploding-gradients"]

    [burst] = exploding(cliff(spike_at=6, burst=20))  # the loss peaks between 4 and 8
    assert burst.step == 8 and "over 10x" in burst.evidence and "answered at 2" in burst.evidence
    assert exploding(cliff(spike_at=None, burst=20)) == []   # the loss did not answer
    assert exploding(cliff(spike_at=60, burst=20)) == []     # too long after the burst
    assert exploding(cliff(spike_at=6, burst=5)) == []       # a 5x rise is no burst
    assert len(exploding(cliff(spike_at=None, burst=200))) == 1  # 100x needs no loss


def test_updates_too_small_to_learn_and_weights_that_never_change():
    loss = [(s, 2.3) for s in range(1, 41)]
    tiny = {f"update_ratio/fc{i}": [(s, 3e-7) for s in range(1, 41)] for i in range(3)}
    found = diagnose_scalars({"loss/train": loss, **tiny})
    assert [(f.symptom, f.follows) for f in found] == [  # the mechanism, then what it does
        ("small-updates", None), ("not-learning", "small-updates")]
    assert any("raise the learning rate" in fix for fix in found[1].fixes)  # same direction
    head_only = {**{f"update_ratio/fc{i}": [(s, 0.0) for s in range(1, 41)] for i in range(2)},
                 "update_ratio/head": [(s, 1e-3) for s in range(1, 41)]}
    [frozen] = diagnose_scalars({"loss/train": [(1, 1.0)], **head_only})
    assert frozen.symptom == "frozen-weights" and "2 of 3 layers" in frozen.evidence
    one_still = {**head_only, "update_ratio/fc1": [(s, 1e-3) for s in range(1, 41)]}
    assert diagnose_scalars({"loss/train": [(1, 1.0)], **one_still}) == []  # 1 of 3


def test_dead_units_need_most_units_silent_late_in_the_run():
    dying = [(s, min(1.0, s / 10)) for s in range(1, 21)]
    recovering = [(s, 0.9 if s < 10 else 0.02) for s in range(1, 21)]
    assert [f.symptom for f in diagnose_scalars(
        {"loss": [(1, 1.0)], "dead_units/net.1": dying})] == ["dead-units"]
    assert diagnose_scalars({"loss": [(1, 1.0)], "dead_units/net.1": recovering}) == []


def test_validation_gaps_and_batch_dependence():
    series = {"loss/train": [(1, 1.0)], "metric/val": [(9, 0.98)], "test/metric": [(9, 0.70)],
              "serve/batch_dependence": [(9, 0.25)]}
    found = {f.symptom: f.evidence for f in diagnose_scalars(series)}
    assert found == {"optimistic-validation": "metric/val 0.980 vs test/metric 0.700",
                     "eval-batch-dependence": "25% of probe inputs answered differently with "
                     "other inputs in their batch (serve/batch_dependence)"}



def test_answers_that_change_on_the_same_batch_are_nondeterminism_not_batch_dependence():
    """Dropout left on at serving changes the answer to the very same batch; train-mode
    BatchNorm changes it only with other companions."""
    dropout_on = {"loss/train": [(1, 1.0)], "serve/batch_dependence": [(9, 0.3)],
                  "serve/repeat_change": [(9, 0.2)]}
    assert [f.symptom for f in diagnose_scalars(dropout_on)] == ["nondeterministic-eval"]
    batchnorm = dict(dropout_on, **{"serve/repeat_change": [(9, 0.0)]})
    assert [f.symptom for f in diagnose_scalars(batchnorm)] == ["eval-batch-dependence"]


def class_blocks(n: int = 400, block: int = 40) -> np.ndarray:
    """Class-sorted data, one class after another: while the model has seen only the
    first class, the loss falls from chance to almost zero for a whole block (the first
    5% of steps and more); each class after it arrives at a high loss, which falls but not
    as far."""
    t = np.arange(n)
    first = 0.02 + (np.log(4) - 0.02) * np.exp(-t / 3)
    return np.where(t < block, first, 0.3 + 2.7 * np.exp(-(t % block) / 12))


def blow_up_early(n: int = 300) -> np.ndarray:
    """Chance level at the first step, 40x chance ten steps later, and there to the end."""
    return np.concatenate([np.geomspace(np.log(10), 40 * np.log(10), 10),
                           np.full(n - 10, 40 * np.log(10))])


def test_a_sawtooth_that_starts_low_is_oscillation_and_an_early_blow_up_is_divergence(
        tmp_path: Path):
    assert symptoms_in(write(tmp_path / "blocks", {"loss/train": noisy(class_blocks(), 0.05)})) \
        == {"oscillating"}
    assert "diverging" in symptoms_in(write(tmp_path / "early", {
        "loss/train": noisy(blow_up_early(), 0.05)}))


def test_a_validation_loss_far_below_the_training_loss_is_named(tmp_path: Path):
    train = noisy(decay(end=0.6), 0.1)
    leaky = {"loss/train": train, "loss/val": np.full(N // 40, 0.08)}
    assert symptoms_in(write(tmp_path / "leaky", leaky, every=40)) == {
        "validation-above-training"}
    # dropout's usual gap and heavy augmentation's: training looks worse than validation
    for name, share in (("dropout", 0.7), ("augmented", 0.33)):
        gap = {"loss/train": train, "loss/val": decay(end=0.6)[39::40] * share}
        assert symptoms_in(write(tmp_path / name, gap, every=40)) == set(), name
    # both converged near zero: a ratio of two small numbers is noise, not evidence
    converged = {"loss/train": noisy(decay(end=0.01), 0.1),
                 "loss/val": np.full(N // 40, 0.002)}
    assert symptoms_in(write(tmp_path / "converged", converged, every=40)) == set()
    # a plateau most of the run, then the task clicks within an epoch: the evaluations
    # after the drop see the model the last steps trained, not the plateau before them
    t = np.arange(N)
    late = np.where(t < 340, 0.69, 0.69 * np.exp(-(t - 340) / 4) + 0.05)
    learnt = {"loss/train": noisy(late, 0.1),
              "loss/val": np.where(np.arange(50, N + 1, 50) <= 340, 0.69, 0.05)}
    assert symptoms_in(write(tmp_path / "late", learnt, every=50)) == set()


def test_a_validation_metric_that_never_moves_while_the_loss_falls_is_named(tmp_path: Path):
    """Four rare classes weighted the wrong way round: every input is called healthy, and
    validation accuracy is the healthy share at every evaluation."""
    majority = {"loss/train": noisy(decay(start=1.39, end=0.006), 0.1),
                "metric/val": np.full(N // 40, 0.9552)}
    assert symptoms_in(write(tmp_path / "majority", majority, every=40)) == {
        "flat-validation-metric"}
    learning = dict(majority, **{"metric/val": 0.9552 + 0.03 * (1 - np.exp(-np.arange(10) / 3))})
    assert symptoms_in(write(tmp_path / "learning", learning, every=40)) == set()
    perfect = dict(majority, **{"metric/val": np.ones(N // 40)})
    assert symptoms_in(write(tmp_path / "perfect", perfect, every=40)) == set()

# -- bad input, through the CLI -----------------------------------------------------------
def test_an_empty_folder_is_exit_2_with_a_clear_message(tmp_path: Path):
    result = run_cli("diagnose", str(tmp_path))
    assert result.returncode == 2
    assert "no TensorBoard event files" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_corrupt_event_file_is_named(tmp_path: Path):
    (tmp_path / "events.out.tfevents.1.host").write_bytes(b"\x00garbage" * 50)
    result = run_cli("diagnose", str(tmp_path))
    assert result.returncode == 2
    assert "events.out.tfevents.1.host: no readable record" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_corrupt_run_next_to_a_good_one_is_a_note(tmp_path: Path):
    write(tmp_path / "good", HEALTHY["Loss/train"]())
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "events.out.tfevents.1.host").write_bytes(b"\x07" * 300)
    result = run_cli("diagnose", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    runs = {r["run"]: r for r in json.loads(result.stdout)["runs"]}
    assert runs["good"]["findings"] == []
    assert "no readable record" in runs["bad"]["notes"][0]


def test_a_truncated_event_file_is_read_up_to_the_damage(tmp_path: Path):
    write(tmp_path, PATHOLOGIES["nan"][1]())
    [event_file] = tmp_path.glob("events.out.tfevents.*")
    event_file.write_bytes(event_file.read_bytes()[:-10])  # the writer was killed mid-record
    [run] = diagnose(tmp_path)
    assert run.readable  # the first points survive, and the loss of the rest is said
    [note] = [n for n in run.notes if event_file.name in n]
    assert "then a truncated record (the file ends inside it)" in note
    assert "were skipped" in note


def test_damage_inside_an_event_file_is_reported_where_it_is(tmp_path: Path):
    """A flipped byte in the middle: everything before it is read, the note says how many
    records that was and how much of the file is lost, and nothing after is trusted."""
    write(tmp_path, {"loss/train": decay()})
    [event_file] = tmp_path.glob("events.out.tfevents.*")
    data = bytearray(event_file.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8] = b"\xff" * 8
    event_file.write_bytes(bytes(data))
    [run] = diagnose(tmp_path)
    kept = len(run_scalars(tmp_path)["loss/train"])
    assert 0 < kept < N
    [note] = [n for n in run.notes if event_file.name in n]
    assert note.startswith(f"{event_file.name}: read ") and "were skipped" in note
    assert "corrupt" in note


def run_scalars(folder: Path) -> dict:
    from sandbox.diagnosis.logs import find_runs
    [log] = find_runs(folder)
    return log.scalars


def test_a_log_without_a_loss_tag_lists_what_it_saw(tmp_path: Path):
    write(tmp_path, {"reward/episode": [1.0, 2.0, 3.0]})
    result = run_cli("diagnose", str(tmp_path))
    assert result.returncode == 2
    assert "no training-loss tag among: reward/episode" in result.stderr
    with pytest.raises(NoEventFiles):
        diagnose(tmp_path)


def test_json_output_has_the_documented_shape(tmp_path: Path):
    write(tmp_path / "runs" / "nan", PATHOLOGIES["nan"][1]())
    result = run_cli("diagnose", str(tmp_path / "runs"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"runs": [{
        "run": "nan", "notes": ["no gradient telemetry: gradient rules skipped "
                                "(sandbox.probe.Probe writes it)"],
        "findings": [{"symptom": "diverging", "step": 5,
                      "evidence": "Loss/train became nan at step 5"}]}]}


def test_the_report_names_causes_and_fixes(tmp_path: Path):
    write(tmp_path / "run", PATHOLOGIES["sawtooth"][1]())
    result = run_cli("diagnose", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "oscillating since step" in result.stdout
    assert "likely causes: data not shuffled" in result.stdout
    assert "try: shuffle every epoch" in result.stdout


def test_an_error_metric_is_read_with_lower_is_better():
    loss = [(s, 1.0) for s in range(1, 41)]
    optimistic = {"loss/train": loss, "metric/val_mae": [(40, 6.2)],
                  "test/metric_mae": [(40, 8.3)]}
    [finding] = [f for f in diagnose_scalars(optimistic) if f.symptom == "optimistic-validation"]
    assert "6.2" in finding.evidence and "8.3" in finding.evidence
    pessimistic = dict(optimistic, **{"metric/val_mae": [(40, 9.0)]})
    assert "optimistic-validation" not in {f.symptom for f in diagnose_scalars(pessimistic)}
    # a falling error is progress: it overrules a flat loss (a rising one would not)
    falling = {"loss/train": loss, "metric/val_mae": [(10, 5.0), (40, 4.0)]}
    rising = {"loss/train": loss, "metric/val_mae": [(10, 4.0), (40, 5.0)]}
    assert "not-learning" not in {f.symptom for f in diagnose_scalars(falling)}
    assert "not-learning" in {f.symptom for f in diagnose_scalars(rising)}


def test_a_big_folder_reports_progress_on_stderr_and_a_small_one_stays_quiet(tmp_path: Path):
    import io

    from sandbox.cli.cmd_diagnose import Progress

    for i in range(20):
        write(tmp_path / f"run{i:02d}", {"loss/train": decay()})
    heard = []
    runs = diagnose(tmp_path, on_run=lambda i, n, name: heard.append((i, n, name)))
    assert [name for _, _, name in heard] == [r.name for r in runs] and heard[0][:2] == (0, 20)
    log = io.StringIO()
    progress = Progress(log)
    progress.started -= Progress.AFTER_S  # as if the folder had taken a second already
    diagnose(tmp_path, on_run=progress)
    lines = log.getvalue().splitlines()  # not a terminal: one line per tenth of the runs
    assert lines[0] == "diagnosing run 1 of 20: run00" and len(lines) == 10
    quiet = run_cli("diagnose", str(tmp_path / "run00"))
    assert quiet.returncode == 0 and "diagnosing run" not in quiet.stderr


def test_a_curve_too_long_to_hold_is_thinned_keeping_its_spikes_and_nan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Memory per tag is bounded: past MAX_POINTS a curve keeps the larger of each pair,
    so a one-step burst and the NaN that ends it are still there to be named.
    """
    from sandbox.diagnosis import logs
    monkeypatch.setattr(logs, "MAX_POINTS", 256)
    values = list(noisy(decay(2000), 0.1))
    values[601] = 500.0  # a one-step burst on an odd step
    values[-1] = math.nan
    [run] = diagnose(write(tmp_path / "long", {"loss/train": values}))
    [points] = [p for tag, p in logs.find_runs(tmp_path / "long")[0].scalars.items()]
    assert len(points) < 256
    assert points[0][0] <= 8 and points[-2][0] >= 1980  # one resolution end to end
    assert max(v for _, v in points if math.isfinite(v)) == 500.0
    assert math.isnan(points[-1][1])
    assert any("thinned" in note for note in run.notes)
    assert "sudden-nan" in {f.symptom for f in run.findings}


def test_links_and_fifos_named_like_event_files_are_skipped_with_a_note(tmp_path: Path):
    """A dangling link once exited 3 and a FIFO hung: neither is read, each gets a note,
    also in a run folder that holds nothing else.
    """
    import os
    write(tmp_path / "runs" / "good", HEALTHY["Loss/train"]())
    os.mkfifo(tmp_path / "runs" / "good" / "events.out.tfevents.2.fifo")
    (tmp_path / "runs" / "gone").mkdir()
    (tmp_path / "runs" / "gone" / "events.out.tfevents.1.link").symlink_to(tmp_path / "nowhere")
    result = run_cli("diagnose", str(tmp_path / "runs"), "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    runs = {r["run"]: r for r in json.loads(result.stdout)["runs"]}
    assert "events.out.tfevents.2.fifo: skipped, not a regular file" in runs["good"]["notes"]
    assert "events.out.tfevents.1.link: skipped, not a regular file" in runs["gone"]["notes"]
    only_links = tmp_path / "links"
    only_links.mkdir()
    (only_links / "events.out.tfevents.3.link").symlink_to(tmp_path / "nowhere")
    result = run_cli("diagnose", str(only_links), timeout=60)
    assert result.returncode == 2 and "not a regular file" in result.stderr
