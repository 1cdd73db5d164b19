"""A verdict is never lost to a failing history or disk, and each kind of bad input gets
its own exit code (issue 13): real processes, real files, a real SQLite lock."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys

import pytest

from sandbox import history as history_module
from sandbox.history import History, HistoryError

from .conftest import FIXTURE_SCENARIOS, FIXTURES, ROOT, run_cli

SCENARIOS = ("--scenarios", str(FIXTURE_SCENARIOS))
SOLUTION = FIXTURE_SCENARIOS / "tiny-v1" / "solution" / "config.yaml"


@pytest.fixture
def solved_workspace(tmp_path):
    """A home whose tiny-v1 workspace holds the fix, with its attempt open."""
    env = {"SANDBOX_HOME": str(tmp_path / "home")}
    started = run_cli("start", "tiny-v1", *SCENARIOS, "--logdir", str(tmp_path / "runs"),
                      env=env)
    assert started.returncode == 0, started.stderr
    shutil.copyfile(SOLUTION, tmp_path / "home" / "tiny-v1" / "config.yaml")
    return env, tmp_path / "home" / "history.sqlite3"


@pytest.mark.parametrize("as_json", [False, True])
def test_a_pass_is_printed_even_when_the_history_cannot_be_written(tmp_path, solved_workspace,
                                                                    as_json):
    env, database = solved_workspace
    database.write_bytes(b"this is not a database, it was overwritten by mistake\n" * 100)
    for leftover in database.parent.glob("history.sqlite3-*"):  # WAL and shared memory
        leftover.unlink()
    done = run_cli("verify", "tiny-v1", *SCENARIOS, "--logdir", str(tmp_path / "runs"),
                   *(["--json"] if as_json else []), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    warning = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and str(database) in warning[0]
    assert "the verdict was not recorded in your history" in warning[0]
    if as_json:
        verdict = json.loads(done.stdout)
        assert verdict["verdict"] == "pass" and verdict["recorded"] is False
    else:
        assert "PASS" in done.stdout


def test_a_locked_history_names_the_cause_and_the_database(tmp_path, monkeypatch):
    monkeypatch.setattr(history_module, "BUSY_TIMEOUT_S", 0.2)
    log = History(tmp_path / "history.sqlite3")
    log.record_verification(None, "tiny-v1", passed=False)
    holder = sqlite3.connect(tmp_path / "history.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(HistoryError) as caught:
            History(tmp_path / "history.sqlite3").record_verification(None, "tiny-v1",
                                                                      passed=True)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    message = str(caught.value)
    assert str(tmp_path / "history.sqlite3") in message
    assert "another sandbox command is writing to it" in message
    assert "move it aside" not in message


@pytest.mark.parametrize("text, advice", [
    ("database or disk is full", "the disk it is on is full"),
    ("attempt to write a readonly database", "read-only"),
    ("database is locked", "another sandbox command"),
])
def test_history_advice_fits_the_cause(tmp_path, text, advice):
    message = History(tmp_path / "h.sqlite3")._unwritable(sqlite3.OperationalError(text))
    assert advice in message and "move it aside" not in message


def test_a_full_disk_under_logdir_is_bad_input_naming_the_file(tmp_path):
    """A real ENOSPC: the run folder on a 64 KiB tmpfs, in a private mount namespace."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    script = (f'mount -t tmpfs -o size=64k tmpfs "{mount}" || exit 99\n"$@"')
    done = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", sys.executable, "-m", "sandbox",
         "verify", "tiny-v1", *SCENARIOS, "--solution", "--logdir", str(mount / "runs")],
        capture_output=True, text=True, cwd=ROOT, timeout=180)
    if done.returncode == 99 or "unshare:" in done.stderr:
        pytest.skip(f"no private tmpfs here (needs CAP_SYS_ADMIN): {done.stderr}")
    assert done.returncode == 2, done.stdout + done.stderr
    said = done.stderr.strip().splitlines()
    assert len(said) == 1 and said[0].startswith(f"sandbox verify: cannot write {mount}/runs/")
    assert "No space left on device; free some space" in said[0]
    assert "history" not in said[0]


def test_run_on_a_missing_gpu_is_bad_input_like_verify(tmp_path):
    for command in ("run", "verify"):
        done = run_cli(command, "tiny-v1", *SCENARIOS, "--device", "cuda", "--logdir",
                       str(tmp_path), timeout=120)
        if done.returncode == 0:
            pytest.skip("this machine has a CUDA device")
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "torch sees no CUDA device" in done.stderr


@pytest.mark.parametrize("source", [
    b"def train(cfg, data, run):\n    return '\xff\xfe'\n",  # Latin-1 bytes, no declaration
    b"def train(cfg, data, run):\n    pass\n\x00\n",
])
def test_a_pipeline_that_is_not_text_fails_like_a_syntax_error(tmp_path, source):
    pipeline = tmp_path / "pipeline.py"
    pipeline.write_bytes(source)
    done = run_cli("verify", "tiny-v1", *SCENARIOS, "--pipeline", str(pipeline))
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("sandbox verify: The candidate pipeline.py cannot run:")
    assert "Nothing was run" in done.stderr and "internal error" not in done.stderr


def test_a_declared_encoding_is_honoured(tmp_path):
    pipeline = tmp_path / "pipeline.py"
    pipeline.write_bytes((FIXTURES / "pipelines" / "raises.py").read_bytes().replace(
        b"\n", b"  # \xe9\n", 1).join([b"# -*- coding: latin-1 -*-\n", b""]))
    done = run_cli("verify", "tiny-v1", *SCENARIOS, "--pipeline", str(pipeline), "--seeds",
                   "1", "--logdir", str(tmp_path / "runs"))
    assert done.returncode == 1 and "raised ValueError" in done.stdout, done.stderr
