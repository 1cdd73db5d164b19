"""The console entry point end to end, in child processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import FIXTURE_SCENARIOS, FIXTURES, ROOT, run_cli

TINY = ["--scenarios", str(FIXTURE_SCENARIOS)]


def test_list_json_lists_the_catalog():
    result = run_cli("list", "--json")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    shipped = sorted(p.parent.name for p in (ROOT / "scenarios").glob("*/scenario.yaml"))
    assert sorted(e["id"] for e in entries) == shipped and len(shipped) >= 13
    for entry in entries:
        assert {"id", "title", "difficulty", "tags"} <= entry.keys()
        assert entry["difficulty"] in (1, 2, 3) and entry["tags"]


@pytest.mark.parametrize("command", [["list"], ["list", "--json"], ["show", "exploding-lr-v2"],
                                     ["stats", "--json"]])
def test_listing_and_showing_do_not_import_torch(command, tmp_path):
    code = (f"import sys; from sandbox.cli.main import main; rc = main({command!r}); "
            "sys.stdout.flush(); print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', "
            "file=sys.stderr); sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=60,
                            env={**os.environ, "SANDBOX_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().endswith("NO-TORCH")


def test_show_prints_the_brief_and_not_the_answer():
    result = run_cli("show", "vanishing-gradients-v2")
    assert result.returncode == 0
    assert "first step to the last" in result.stdout
    assert "Kaiming" not in result.stdout


@pytest.mark.parametrize("args, message", [
    (["verify", "explodng-lr-v2"], "Did you mean exploding-lr-v2?"),
    (["verify", "exploding-lr-v2", "--set", "optimizer.lr"], "is not of the form key=value"),
    (["verify", "exploding-lr-v2", "--set", "model.hidden=16"], "model.hidden: locked"),
    (["verify", "exploding-lr-v2", "--set", "optimiser.lr=0.1"], "did you mean 'optimizer.lr'?"),
    (["verify", "exploding-lr-v2", "--config", "missing.yaml"],
     "--config missing.yaml: no such file."),
    (["verify", "exploding-lr-v2", "--seeds", "0"], "--seeds 0: run at least one seed."),
    (["verify", "exploding-lr-v2", "--bogus"], "unrecognized arguments: --bogus"),
    (["verify", "exploding-lr-v2", "--solution", "--config", "x.yaml"], "not allowed with"),
])
def test_bad_input_exits_2_with_one_clear_message(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_candidate_with_a_syntax_error_exits_1_without_a_traceback():
    result = run_cli("verify", "tiny-v1", *TINY, "--pipeline",
                     str(FIXTURES / "pipelines" / "syntax_error.py"))
    assert result.returncode == 1
    assert "SyntaxError at syntax_error.py:4" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("fixture, status", [("raises", "raised ValueError at raises.py:2"),
                                             ("hangs", "did not finish within the time limit")])
def test_a_failing_candidate_exits_1_and_names_the_cause(fixture, status, tmp_path):
    result = run_cli("verify", "tiny-v1", *TINY, "--pipeline",
                     str(FIXTURES / "pipelines" / f"{fixture}.py"), "--logdir", str(tmp_path))
    assert result.returncode == 1
    assert status in result.stdout
    assert "Traceback" not in result.stderr + result.stdout


def test_verify_json_has_the_full_result_and_writes_logs_and_png(tmp_path):
    result = run_cli("verify", "tiny-v1", *TINY, "--solution", "--json", "--device", "cpu",
                     "--logdir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "pass" and report["failed_criteria"] == []
    assert [s["seed"] for s in report["seeds"]] == [0, 1]
    names = [c["name"] for c in report["seeds"][0]["checks"]]
    assert names == ["completes", "finite loss", "train loss", "test accuracy",
                     "honest validation", "budget", "capacity", "seeded start"]
    assert report["matched"]["kind"] == "solution" and report["flags"] == []
    assert report["provenance"]["scenario"]["id"] == "tiny-v1"
    for seed in report["seeds"]:
        assert list(Path(seed["run_dir"]).glob("events.out.tfevents.*"))
    assert Path(report["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    broken = list((tmp_path / "tiny-v1").glob("attempt-01 shipped (broken)/seed0/"
                                              "events.out.tfevents.*"))
    assert broken, "the broken baseline for the side-by-side PNG was not recorded"


def test_verify_shipped_fails_with_exit_1(tmp_path):
    result = run_cli("verify", "tiny-v1", *TINY, "--logdir", str(tmp_path))
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "train loss" in result.stdout


def test_run_prints_measurements(tmp_path):
    result = run_cli("run", "tiny-v1", *TINY, "--set", "optimizer.lr=0.5",
                     "--logdir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "tiny-v1 seed 0 on cpu: ran to the end and " in result.stdout
    assert "compare runs: sandbox tb tiny-v1" in result.stdout


def test_check_accepts_a_fair_scenario(tmp_path):
    result = run_cli("check", str(FIXTURE_SCENARIOS / "tiny-v1"), "--logdir", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a fair challenge" in result.stdout


def test_an_unwritable_logdir_is_bad_input(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli("verify", "tiny-v1", *TINY, "--logdir", str(blocker / "runs"))
    assert result.returncode == 2
    assert "cannot write run logs under" in result.stderr and "--logdir" in result.stderr


def test_check_on_a_folder_that_is_not_a_scenario_exits_2(tmp_path):
    result = run_cli("check", str(tmp_path))
    assert result.returncode == 2
    assert "is not a scenario folder" in result.stderr


@pytest.mark.parametrize("args, message", [
    (("run", "exploding-lr-v2", "--seed", "-1"), "-1 is outside 0 to 4294967295"),
    (("run", "exploding-lr-v2", "--seed", str(2 ** 32)), "is outside 0 to 4294967295"),
    (("drill", "--minutes", "nan"), "nan is not a positive, finite number of minutes"),
    (("drill", "--minutes", "inf"), "inf is not a positive, finite number of minutes"),
    (("drill", "--minutes", "0"), "0 is not a positive, finite number of minutes"),
])
def test_out_of_range_seeds_and_times_are_refused_before_anything_runs(
        args: tuple[str, ...], message: str, tmp_path: Path):
    """They were a numpy traceback as the verdict (exit 3), and an internal error after the
    drill had reset the workspace and abandoned the open attempt.
    """
    home = tmp_path / "home"
    result = run_cli(*args, env={"SANDBOX_HOME": str(home)}, timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "internal error" not in result.stderr
    assert not home.exists()  # nothing started, nothing written
