"""The diagnoser on the labelled corpus (benchmarks/corpus): real training runs written by
Lightning's TensorBoardLogger, torch's SummaryWriter, tensorboardX with Hugging Face tags,
and the Probe, labelled from their curves before the diagnoser was run on them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.diagnosis import RunDiagnosis, diagnose

CORPUS = Path(__file__).resolve().parent.parent / "benchmarks" / "corpus"
LABELS = json.loads((CORPUS / "labels.json").read_text())["runs"]


def diagnosed(run: str) -> RunDiagnosis:
    [found] = diagnose(CORPUS / "runs" / run)
    return found


def named(run: str) -> set[str]:
    return {f.symptom for f in diagnosed(run).findings}


def test_the_corpus_has_four_loggers_and_healthy_runs_of_each():
    loggers = {run.split("/")[0] for run in LABELS}
    assert loggers == {"lightning", "torch", "tbx", "probe"}
    for logger in loggers:
        assert any(not e["labels"] for run, e in LABELS.items() if run.startswith(logger))


@pytest.mark.parametrize("run", sorted(r for r, e in LABELS.items() if not e["labels"]))
def test_every_healthy_corpus_run_gets_no_finding(run: str):
    assert named(run) == set()


def test_the_diagnoser_agrees_with_the_labels_on_nine_symptoms_in_ten():
    """Precision and recall over all labels; benchmarks/CORPUS.md lists each disagreement."""
    tp = fp = fn = 0
    for run, entry in LABELS.items():
        found, labels = named(run), set(entry["labels"])
        tp, fp, fn = tp + len(found & labels), fp + len(found - labels), fn + len(labels - found)
    assert tp / (tp + fp) >= 0.9 and tp / (tp + fn) >= 0.9, (tp, fp, fn)


def test_an_oscillation_in_part_of_the_run_is_found():
    """Shuffled for three epochs, then a resumed loader that reads class-sorted files."""
    [hit] = [f for f in diagnosed("torch/torch-sorted-after-resume").findings
             if f.symptom == "oscillating"]
    assert "swings" in hit.evidence


def test_spikes_that_repeat_are_oscillation():
    """Full-batch descent past the edge of stability: low, with a 10-25x spike every ~120
    steps to the end; no percentile range sees it.
    """
    [hit] = [f for f in diagnosed("probe/probe-full-batch-edge-of-stability").findings
             if f.symptom == "oscillating"]
    assert "spikes" in hit.evidence


def test_a_blow_up_in_the_first_steps_is_not_the_baseline():
    """1e4 within five steps, then at chance for the rest: it never learned."""
    assert named("torch/torch-blow-up-in-first-steps") == {"not-learning"}


def test_a_run_that_learned_and_collapsed_tells_one_story():
    """The loss fell to 0.05, a learning-rate jump burst the gradient, and it sat at chance:
    not 'does not move, raise the learning rate' beside 'lower the learning rate'.
    """
    run = diagnosed("torch/torch-learned-then-collapsed")
    assert [f.symptom for f in run.findings] == ["exploding-gradients", "collapsed"]
    assert run.primary.symptom == "exploding-gradients"
    assert run.findings[1].follows == "exploding-gradients"
    assert not any("raise the learning rate" in fix for f in run.findings for fix in f.fixes)


def test_secondary_findings_keep_no_advice_against_the_primary():
    """Exploding gradients, then a loss at chance: not-learning is told as following from
    the blow-up, without its 'raise the learning rate'.
    """
    run = diagnosed("lightning/lightning-lr-too-high")
    assert run.primary.symptom == "exploding-gradients"
    [stalled] = [f for f in run.findings if f.symptom == "not-learning"]
    assert stalled.follows == "exploding-gradients"
    assert not any("learning rate" in line for line in stalled.fixes + stalled.causes)
    assert run.to_json()["findings"][1]["follows"] == "exploding-gradients"


def test_lightning_gradient_norm_tags_are_read():
    """lightning.pytorch.utilities.grad_norm writes grad_2.0_norm/<param> and _total."""
    run = diagnosed("lightning/lightning-mlp-adam")
    assert not any("no gradient telemetry" in note for note in run.notes)
