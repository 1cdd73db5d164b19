"""The verdict cannot be bought cheaply: real candidate files that try, and what they get.

Each cheat runs through the real harness (child processes, the JSON protocol, the
grader's scoring). The test asserts what the grader measured, not only the verdict.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from sandbox import catalog, data, integrity, verification
from sandbox import reference as references
from sandbox.harness import candidate, protocol
from sandbox.reference import Reference
from sandbox.verification import verify

from .conftest import FIXTURE_SCENARIOS, FIXTURES

TINY = catalog.get("tiny-v1", [FIXTURE_SCENARIOS])
CHEATS = FIXTURES / "cheats"


def from_template(name: str, folder: Path, **values: str) -> Path:
    """A cheat file with its placeholders (``__MARKER__``) filled in."""
    text = (CHEATS / f"{name}.py").read_text()
    for key, value in values.items():
        text = text.replace(f"__{key}__", value)
    path = folder / f"{name}.py"
    path.write_text(text)
    return path


def run(pipeline: Path, logdir: Path, scenario=TINY, seeds=(0,)):
    chosen = candidate.make(scenario, pipeline_file=pipeline)
    return verify(scenario, chosen, seeds=list(seeds), device="cpu", logdir=logdir,
                  with_baseline=False, plot=False)


def check(outcome, name: str):
    return next(c for c in outcome.seeds[0].checks if c.name == name)


def test_a_pickle_sent_to_the_grader_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled-in"
    outcome = run(from_template("pickle_payload", tmp_path, MARKER=str(marker)), tmp_path)
    seed = outcome.seeds[0]
    assert seed.status == "malformed" and not seed.passed
    assert "could not accept (not a JSON message" in seed.error
    assert not marker.exists()  # nothing ran: not in the grader, not anywhere


def test_a_forged_json_result_scores_nothing(tmp_path):
    outcome = run(CHEATS / "forged_result.py", tmp_path)
    assert not outcome.passed
    assert check(outcome, "test accuracy").measured == "not measured"
    assert outcome.results[0]["test/metric"] is None


def test_the_hidden_split_is_not_in_the_candidates_process_and_cannot_be_rebuilt(
        tmp_path, monkeypatch):
    monkeypatch.setattr(verification, "_FIXED_SALT", "known to this test only")
    scenario = catalog.get("vanishing-gradients-v2")
    found = tmp_path / "found.npz"
    outcome = run(from_template("rebuild_test_split", tmp_path, OUT=str(found)), tmp_path,
                  scenario=scenario)
    assert outcome.seeds[0].status == "ok", outcome.seeds[0].error
    salt = hashlib.sha256(b"known to this test only").digest()[:16]
    _, hidden = data.build(_data_config(scenario), 0, salt)
    with np.load(found) as seen:
        assert int(seen["jobs"]) == 1  # it did find the harness's job description
        arrays = [seen[k] for k in seen.files if k.startswith(("rebuilt", "tensor", "served"))]
    assert len(arrays) >= 5
    assert not any(a.shape == hidden.x.shape and np.allclose(a, hidden.x) for a in arrays)
    assert outcome.provenance["hidden_test"]["salt"] == "fixed by SANDBOX_TEST_SALT"


def test_the_hidden_rows_are_served_in_an_order_that_says_nothing_about_their_answers():
    """In the builder's order, consecutive hours let predict() copy the next request's
    "demand an hour ago" as this hour's answer; the grader's own order leaves none of that."""
    cfg = {"name": "demand", "lags": 3}
    salt = b"an order test"
    _, ordered = data.BUILDERS["demand"](0, salt, lags=3)
    _, served = data.build(cfg, 0, salt)
    assert sorted(served.y.tolist()) == sorted(ordered.y.tolist())

    def copied(split):  # the next row's last-hour column equals this row's answer
        return float(np.mean(np.isclose(split.x[1:, 3], split.y[:-1])))

    assert copied(ordered) > 0.99 and copied(served) < 0.01


def _data_config(scenario) -> dict:
    from sandbox import _yaml
    return _yaml.load_file(scenario.config_path)["data"]


def test_cleared_hooks_leave_the_budget_unmeasured_and_fail(tmp_path):
    outcome = run(CHEATS / "clear_hooks.py", tmp_path)
    budget = check(outcome, "budget")
    assert not budget.passed
    assert budget.measured.startswith("not measured: the harness's code or hooks were changed")
    assert "harness-tampered" in {f["flag"] for f in outcome.flags}


def test_hand_written_updates_count_their_samples(tmp_path):
    outcome = run(CHEATS / "handwritten_updates.py", tmp_path)
    result = outcome.results[0]
    assert result["steps"] == 0 and result["samples"]["traced"] == 3237  # 3 epochs x 1079
    assert check(outcome, "budget").passed
    assert "updates-outside-optimizer" in {f["flag"] for f in outcome.flags}


def test_hand_written_updates_over_the_budget_fail_it(tmp_path):
    longer = tmp_path / "longer.py"
    longer.write_text((CHEATS / "handwritten_updates.py").read_text()
                      .replace("EPOCHS = 1", "EPOCHS = 4"))
    budget = check(run(longer, tmp_path), "budget")
    assert not budget.passed and budget.measured.startswith("12948 samples, 0 steps")


def test_lbfgs_pays_for_every_closure(tmp_path):
    outcome = run(CHEATS / "lbfgs.py", tmp_path)
    result, budget = outcome.results[0], check(outcome, "budget")
    # the first step's closures alone are five times the budget: the run is stopped as
    # the second step begins, with every closure of the first counted
    assert result["status"] == "over-budget" and result["steps"] == 2
    assert result["samples"]["backward_passes"] > 15
    assert result["samples"]["traced"] == 1079 * result["samples"]["backward_passes"]
    assert not budget.passed


def test_capacity_changed_in_code_is_refused(tmp_path):
    capacity = check(run(CHEATS / "capacity_in_code.py", tmp_path), "capacity")
    assert not capacity.passed
    assert capacity.measured == ("19210 params (+2855% vs 650); weight shapes differ; 19210 "
                                 "trained (+2855%)")


def test_an_invented_val_metric_is_measured_against_the_real_one(tmp_path):
    scenario = catalog.get("data-leakage-v2")
    chosen = candidate.make(scenario, variant=scenario.decoys_dir / "discounted-val-metric")
    outcome = verify(scenario, chosen, seeds=[0], device="cpu", logdir=tmp_path,
                     with_baseline=False, plot=False)
    result = outcome.results[0]
    assert result["val/measured"] - result["val_metric"] == pytest.approx(0.12, abs=0.02)
    honest = check(outcome, "honest validation")
    assert not honest.passed and honest.measured.startswith("off by 0.1")
    assert not check(outcome, "split overlap").passed
    assert "reported-val-differs" in {f["flag"] for f in outcome.flags}


def test_seeds_that_start_from_the_same_weights_fail(tmp_path):
    outcome = run(CHEATS / "constant_seed.py", tmp_path, seeds=(0, 1))
    starts = [seed.checks[-1] for seed in outcome.seeds]
    assert [c.name for c in starts] == ["seeded start"] * 2
    assert not any(c.passed for c in starts) and "seed 1" in starts[0].measured
    honest = run(FIXTURE_SCENARIOS / "tiny-v1" / "pipeline.py", tmp_path, seeds=(0, 1))
    assert all(seed.checks[-1].passed for seed in honest.seeds)


def test_validating_on_rows_it_trained_on_is_no_validation(tmp_path):
    outcome = run(CHEATS / "validate_on_trained_rows.py", tmp_path)
    assert outcome.results[0]["val/rows"] == 0 and outcome.results[0]["val/trained_on"] > 0
    honest = check(outcome, "honest validation")
    assert not honest.passed and "also trained on" in honest.measured


def test_json_carries_the_provenance_of_what_was_judged(tmp_path):
    pipeline = CHEATS / "handwritten_updates.py"
    record = run(pipeline, tmp_path).to_json()
    provenance = record["provenance"]
    digest = hashlib.sha256(pipeline.read_bytes()).hexdigest()
    assert provenance["candidate"]["files"] == {str(pipeline.resolve()): digest}
    assert provenance["scenario"]["files"]["pipeline.py"] == hashlib.sha256(
        TINY.pipeline_path.read_bytes()).hexdigest()
    assert provenance["criteria"]["max_samples"] == TINY.criteria.max_samples
    assert provenance["torch"] and provenance["devices"] == ["cpu"]
    assert record["seeds"][0]["measured"]["samples"]["traced"] == 3237
    json.dumps(record)  # all of it is JSON


def test_a_copy_of_the_reference_fix_is_flagged_identical(tmp_path):
    """Against a reference measured on this machine: the flag compares loss curves bit for
    bit, and another CPU's floating point gives other bits (the shipped reference.json may
    come from one), so it can only fire where the reference was made."""
    copied = tmp_path / "mine"
    copied.mkdir()
    (copied / "config.yaml").write_text((TINY.solution_dir / "config.yaml").read_text())
    candidates = [candidate.make(TINY), candidate.make(TINY, solution=True),
                  candidate.make(TINY, config_file=copied / "config.yaml")]
    done = verification.execute(TINY, candidates, device="cpu", logdir=tmp_path,
                                with_baseline=False, plot=False)
    try:
        fresh = references.build(TINY, done.results[0], done.results[1])
        outcome = verification.conclude(TINY, candidates[2], done.groups[2], done.results[2],
                                        done, (fresh, None), plot=False)
    finally:
        done.close()
    assert outcome.passed
    assert "identical-to-reference" in {f["flag"] for f in outcome.flags}
    assert outcome.matched["kind"] == "solution"


def result(seed: int, **values) -> dict:
    return {"seed": seed, "status": "ok", "steps": 10, "torch": "t", "val/rows": 10,
            "samples": {"traced": 1000, "untraced": 0, "backward_passes": 10}, **values}


def test_flags_for_results_too_good_to_be_true():
    reference = Reference("f", None, {"0": {"samples": 1000, "test_metric": 0.80,
                                            "loss_digest": "abc"}}, "t")
    shipped = candidate.make(TINY)
    flags = integrity.flags([result(0, **{"test/metric": 0.95, "val_metric": 0.95,
                                          "loss_digest": "abc"})], shipped, reference, 0.1)
    assert {f["flag"] for f in flags} == {"test-above-reference", "zero-val-test-gap",
                                          "identical-to-reference"}
    few = result(0, **{"test/metric": 0.8, "val_metric": 0.7})
    few["samples"] = {"traced": 100, "untraced": 0, "backward_passes": 2}
    assert [f["flag"] for f in integrity.flags([few], shipped, reference, 0.1)] == [
        "few-gradient-samples"]


@pytest.mark.parametrize("raw, why", [
    (b"\x80\x04K\x01.", "not a JSON message"),
    (b'{"kind": "result"}', "expected the fields"),
    (b'{"kind": "exec", "code": "1"}', "unknown message kind"),
    (b'{"kind": "progress", "step": "1", "loss": 2.0}', "a step must be a whole number"),
])
def test_the_protocol_refuses_what_is_not_a_known_message(raw, why):
    with pytest.raises(protocol.MalformedMessage, match=why):
        protocol.decode(raw)


def test_arrays_must_have_the_shape_the_grader_expects():
    packed = protocol.pack(np.zeros((4, 3), dtype=np.float32))
    assert protocol.unpack(packed, "float32", (4, 3)).shape == (4, 3)
    with pytest.raises(protocol.MalformedMessage, match="shape"):
        protocol.unpack(packed, "float32", (5, 3))
    with pytest.raises(protocol.MalformedMessage, match="bytes"):
        protocol.unpack({**packed, "b64": packed["b64"][:-8]}, "float32", (4, 3))


# -- what a red team found, as regression tests --------------------------------------------
def one_seed(scenario_id: str, pipeline: Path, logdir: Path, overrides=()):
    scenario = catalog.get(scenario_id)
    chosen = candidate.make(scenario, pipeline_file=pipeline, overrides=overrides)
    return verify(scenario, chosen, seeds=[scenario.seeds[0]], device="cpu", logdir=logdir,
                  with_baseline=False, plot=False)


@pytest.mark.parametrize("cheat", ["clip_through_data", "clip_in_step"])
def test_clipping_is_seen_however_it_is_written(cheat, tmp_path):
    outcome = one_seed("exploding-lr-v2", CHEATS / f"{cheat}.py", tmp_path)
    clipping = check(outcome, "gradient clipping")
    assert not clipping.passed and clipped_share(clipping) >= 95, clipping.measured


def clipped_share(clipping) -> int:
    """The percentage in 'rescaled on 99% of 72 steps compared'."""
    return int(clipping.measured.removeprefix("rescaled on ").split("%")[0])


def test_keyword_calls_and_bypassed_step_hooks_still_count_the_budget(tmp_path):
    outcome = one_seed("exploding-lr-v2", CHEATS / "hidden_calls.py", tmp_path)
    result = outcome.results[0]
    assert result["samples"]["traced"] == 5 * 8632 and result["steps"] == 0
    assert not check(outcome, "budget").passed
    assert check(outcome, "gradient clipping").measured == (
        "not measured: no torch.optim step followed the 1360 backward passes")


def test_layers_registered_but_never_run_do_not_count_as_capacity(tmp_path):
    capacity = check(one_seed("vanishing-gradients-v2", CHEATS / "unused_layers.py", tmp_path),
                     "capacity")
    assert not capacity.passed and "trained (-" in capacity.measured


def test_tensors_trained_outside_the_model_count_as_capacity(tmp_path):
    capacity = check(run(CHEATS / "hidden_capacity.py", tmp_path), "capacity")
    assert not capacity.passed
    assert capacity.measured == ("650 params (+0% vs 650); 19594 trained (+2914%), 18944 of "
                                 "them outside the model")


def test_a_predict_that_does_not_use_the_model_scores_nothing(tmp_path):
    outcome = run(CHEATS / "oracle_predict.py", tmp_path)
    test = check(outcome, "test accuracy")
    assert not test.passed and "do not come from the model" in test.measured
    assert outcome.results[0]["serving"]["uses_model"] is False


def test_batchnorm_called_around_its_hooks_is_still_seen_serving_in_training_mode(tmp_path):
    serving = check(one_seed("batchnorm-eval-v2", CHEATS / "bn_forward_bypass.py", tmp_path),
                    "serving mode")
    assert not serving.passed and "1 (BatchNorm1d)" in serving.measured


def test_rows_laundered_through_numpy_leave_the_overlap_unmeasured(tmp_path):
    outcome = one_seed("data-leakage-v2", CHEATS / "laundered_rows.py", tmp_path,
                       ["optimizer.lr=0.0002"])
    overlap = check(outcome, "split overlap")
    assert not overlap.passed and "do not come from data.x" in overlap.measured
    assert "untraced-inputs" in {f["flag"] for f in outcome.flags}


def test_rewriting_the_harness_in_process_is_tampering(tmp_path):
    outcome = run(CHEATS / "patched_harness.py", tmp_path)
    assert outcome.seeds[0].status == "ok"
    assert "sandbox.harness.instruments.ClipMonitor.summary" in outcome.results[0]["tampered"]
    assert not check(outcome, "budget").passed
    assert "harness-tampered" in {f["flag"] for f in outcome.flags}


def test_links_and_fifos_planted_in_the_run_folders_are_never_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    pipeline = from_template("planted_links", tmp_path, VICTIM=str(victim))
    chosen = candidate.make(TINY, pipeline_file=pipeline)
    outcome = verify(TINY, chosen, seeds=[0], device="cpu", logdir=tmp_path / "runs",
                     with_baseline=False)
    assert victim.read_text() == "mine"
    assert outcome.seeds[0].status == "malformed" and "2^62" in outcome.seeds[0].error
    group = Path(outcome.run_group)
    assert not (group / "record.json").is_symlink() and json.loads(
        (group / "record.json").read_text())["candidate"] == "pipeline"
    assert (group / "curves.png").read_bytes()[:4] == b"\x89PNG"


# -- a second red team, against the hardened harness ----------------------------------------
def test_an_update_rescaled_after_the_step_leaves_clipping_unmeasured(tmp_path):
    clipping = check(one_seed("exploding-lr-v2", CHEATS / "clip_the_update.py", tmp_path),
                     "gradient clipping")
    assert not clipping.passed and "weights changed outside torch.optim" in clipping.measured


def test_a_norm_parked_on_another_tensor_is_still_clipping(tmp_path):
    clipping = check(one_seed("exploding-lr-v2", CHEATS / "clip_onto_a_sink.py", tmp_path),
                     "gradient clipping")
    assert not clipping.passed and clipped_share(clipping) >= 95, clipping.measured


def test_rows_copied_or_dressed_in_other_ids_still_count(tmp_path):
    outcome = one_seed("exploding-lr-v2", CHEATS / "extra_rows_unseen.py", tmp_path)
    budget, result = check(outcome, "budget"), outcome.results[0]
    counted = result["samples"]["traced"] + result["samples"]["untraced"]
    assert result["status"] == "over-budget"  # stopped once past 10800 samples
    assert 10800 < counted <= 10800 + 128
    assert not budget.passed
    assert budget.measured.endswith(("127 rows per step", "128 rows per step"))


def test_row_ids_cannot_be_rewritten_on_the_tensor(tmp_path):
    overlap = check(one_seed("data-leakage-v2", CHEATS / "relabelled_rows.py", tmp_path),
                    "split overlap")
    assert not overlap.passed and overlap.measured.startswith("9")  # 98% or so, not 0%


def test_a_model_that_refuses_train_is_still_served_in_training_mode(tmp_path):
    outcome = one_seed("batchnorm-eval-v2", CHEATS / "train_is_a_no_op.py", tmp_path)
    assert not check(outcome, "serving mode").passed
    assert not check(outcome, "test accuracy").passed


@pytest.mark.parametrize("cheat, expected", [
    ("zero_weighted_layers", "trained (-"),     # six layers with all-zero gradients
    ("side_network", "of them outside the model"),  # plain tensors updated by hand
])
def test_capacity_counts_what_training_really_changes(cheat, expected, tmp_path):
    capacity = check(one_seed("vanishing-gradients-v2", CHEATS / f"{cheat}.py", tmp_path),
                     "capacity")
    assert not capacity.passed and expected in capacity.measured, capacity.measured


def test_inputs_that_require_a_gradient_are_not_capacity(tmp_path):
    adversarial = tmp_path / "adversarial.py"
    adversarial.write_text((CHEATS / "handwritten_updates.py").read_text().replace(
        "            loss = F.cross_entropy(model(x[batch]), y[batch])",
        "            loss = F.cross_entropy(model(x[batch].clone().requires_grad_()), y[batch])"))
    capacity = check(run(adversarial, tmp_path), "capacity")
    assert capacity.passed, capacity.measured


def _strict(text: str) -> dict:
    def refuse(constant: str):
        raise ValueError(f"not strict JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def test_text_from_the_candidate_cannot_restyle_or_clear_the_terminal(tmp_path):
    from .conftest import run_cli
    noisy = CHEATS / "noisy_logs.py"
    raising = tmp_path / "raising.py"
    raising.write_text(noisy.read_text().replace("RAISE = False", "RAISE = True"))
    for pipeline, code in ((noisy, 0), (raising, 1)):
        shown = run_cli("verify", "tiny-v1", "--scenarios", str(FIXTURE_SCENARIOS),
                        "--pipeline", str(pipeline), "--logdir", str(tmp_path / "runs"))
        assert shown.returncode == code, shown.stdout + shown.stderr
        assert "\x1b" not in shown.stdout and "internal error" not in shown.stderr
    assert "raised ValueError at raising.py" in shown.stdout and "[/][green]?[2J" in shown.stdout


def test_json_is_strict_and_diagnosis_reads_only_the_harness_s_own_files(tmp_path):
    from .conftest import run_cli
    shown = run_cli("verify", "tiny-v1", "--scenarios", str(FIXTURE_SCENARIOS), "--json",
                    "--pipeline", str(CHEATS / "noisy_logs.py"), "--logdir", str(tmp_path))
    record = _strict(shown.stdout)
    assert record["verdict"] == "pass"
    assert record["seeds"][0]["measured"]["train_loss_first"] is None  # NaN, as JSON allows
    assert all(f["symptom"] != "diverging" for s in record["seeds"] for f in s["findings"])
    _strict((Path(record["run_group"]) / "record.json").read_text())


def test_a_run_folder_swapped_for_a_link_redirects_no_write(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    pipeline = from_template("swap_group_folder", tmp_path, VICTIM=str(victim))
    outcome = verify(TINY, candidate.make(TINY, pipeline_file=pipeline), seeds=[0],
                     device="cpu", logdir=tmp_path / "runs", with_baseline=False)
    assert list(victim.iterdir()) == []
    moved = Path(outcome.run_group + "-moved")
    assert {p.name for p in moved.iterdir()} >= {"record.json", "config.yaml", "curves.png"}


# -- gradient accumulation and loss modules (found while writing majority-mixer-v1) --------
ACCUMULATE = {"clipped": ("0.05", "false"), "plain": ("null", "false"),
              "nudged by hand": ("null", "true")}


@pytest.mark.parametrize("case", ACCUMULATE)
def test_accumulated_steps_are_measured_like_any_other(case, tmp_path):
    clip, hand = ACCUMULATE[case]
    pipeline = from_template("accumulate", tmp_path, CLIP=clip, HAND=hand)
    lr = "optimizer.lr=2.0" if case == "clipped" else "optimizer.lr=0.02"
    outcome = one_seed("exploding-lr-v2", pipeline, tmp_path, overrides=[lr])
    result, clipping = outcome.results[0], check(outcome, "gradient clipping")
    assert result["samples"]["backward_passes"] == 4 * result["steps"]
    if case == "clipped":
        assert not clipping.passed and clipped_share(clipping) >= 95, clipping.measured
    elif case == "plain":
        assert clipping.passed, clipping.measured
        assert "updates-outside-optimizer" not in {f["flag"] for f in outcome.flags}
    else:
        assert not clipping.passed and "weights changed outside torch.optim" in \
            clipping.measured
        assert "updates-outside-optimizer" in {f["flag"] for f in outcome.flags}


def test_a_loss_module_is_not_a_second_model(tmp_path):
    """nn.CrossEntropyLoss is a module too: its targets are not samples the model saw."""
    pipeline = from_template("accumulate", tmp_path, CLIP="null", HAND="false")
    outcome = one_seed("exploding-lr-v2", pipeline, tmp_path, overrides=["optimizer.lr=0.02"])
    samples = outcome.results[0]["samples"]
    assert samples["untraced"] == 0 and samples["traced"] == 8 * 1079  # 8 epochs, once each
    assert "untraced-inputs" not in {f["flag"] for f in outcome.flags}
