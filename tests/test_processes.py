"""Nothing a verification starts outlives it, however it ends (see sandbox.harness.processes).

Every test runs the real CLI in a child process with a unique token in its environment;
every process the verification starts (forkserver, resource tracker, seeds, a candidate's
own children) inherits it, so /proc says exactly what is left running.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .conftest import FIXTURE_SCENARIOS, FIXTURES, ROOT, run_cli
from .terminal import Terminal

FORKS = str(FIXTURES / "pipelines" / "forks.py")
DAEMONIZES = str(FIXTURES / "pipelines" / "daemonizes.py")
GRANDCHILD = b"time.sleep(60)"


def processes_with(token: str) -> list[tuple[int, bytes]]:
    """(pid, command line) of every live process whose environment holds ``token``."""
    found = []
    marker = f"SANDBOX_TEST_TOKEN={token}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append((int(entry.name), (entry / "cmdline").read_bytes()))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def nothing_left(token: str, within: float = 5) -> list[tuple[int, bytes]]:
    wait_for(lambda: not processes_with(token), within)
    return processes_with(token)


def grandchildren_up(token: str) -> bool:
    return any(GRANDCHILD in cmd for _, cmd in processes_with(token))


def verify_args(tmp_path: Path, pipeline: str = FORKS,
                scenarios: Path = FIXTURE_SCENARIOS) -> list[str]:
    return ["verify", "tiny-v1", "--scenarios", str(scenarios), "--pipeline",
            pipeline, "--seeds", "1", "--logdir", str(tmp_path / "runs")]


def patient_scenarios(tmp_path: Path) -> Path:
    """A copy of tiny-v1 whose seeds may run 120 s, for tests that stop a run from outside.

    tiny-v1 stops a seed after 6 s; on a loaded machine that limit can end the run (a FAIL
    verdict, exit 1) before the signal under test arrives."""
    scenarios = tmp_path / "scenarios"
    shutil.copytree(FIXTURE_SCENARIOS / "tiny-v1", scenarios / "tiny-v1")
    meta = scenarios / "tiny-v1" / "scenario.yaml"
    assert "time_limit_s: 6\n" in meta.read_text()
    meta.write_text(meta.read_text().replace("time_limit_s: 6\n", "time_limit_s: 120\n"))
    return scenarios


def start_verify(tmp_path: Path, token: str, pipeline: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SANDBOX_TEST_TOKEN": token,
           "SANDBOX_HOME": str(tmp_path / "home")}
    args = verify_args(tmp_path, pipeline, patient_scenarios(tmp_path))
    return subprocess.Popen([sys.executable, "-m", "sandbox", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env)


@pytest.mark.parametrize("pipeline", [FORKS, DAEMONIZES], ids=["forks", "daemonizes"])
def test_a_candidate_that_forks_does_not_hold_the_verdict_or_outlive_it(tmp_path, pipeline):
    """Under capture_output (a pipe the caller reads to its end) the verdict comes back as
    soon as the seed is over, not when the candidate's children finish sleeping; children
    that left the seed's process group are found and stopped too."""
    token = uuid.uuid4().hex
    started = time.monotonic()
    done = run_cli(*verify_args(tmp_path, pipeline), env={"SANDBOX_TEST_TOKEN": token},
                   timeout=120)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert "time limit of 6 s" in done.stdout
    assert took < 45, f"took {took:.0f} s: something held the output pipe"
    assert nothing_left(token) == []


@pytest.mark.parametrize("sig, pipeline", [(signal.SIGKILL, FORKS), (signal.SIGTERM, FORKS),
                                           (signal.SIGKILL, DAEMONIZES)],
                         ids=["sigkill", "sigterm", "sigkill-daemonizes"])
def test_verify_killed_mid_run_leaves_nothing_running(tmp_path, sig, pipeline):
    token = uuid.uuid4().hex
    proc = start_verify(tmp_path, token, pipeline)
    try:
        assert wait_for(lambda: grandchildren_up(token), 90), \
            "the candidate's children never started"
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert nothing_left(token) == []
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM
        assert stderr.strip().splitlines() == [
            "sandbox verify: stopped by SIGTERM; runs in progress were stopped."]
    else:
        assert proc.returncode == -signal.SIGKILL


def test_ctrl_c_during_verify_prints_one_line_and_leaves_nothing(tmp_path):
    """Ctrl-C is SIGINT to the terminal's whole foreground group: the servers ignore it and
    each seed is in a group of its own, so only the grader hears it, and it stops the rest."""
    token = uuid.uuid4().hex
    args = verify_args(tmp_path, scenarios=patient_scenarios(tmp_path))
    terminal = Terminal(*args, cwd=tmp_path,
                        env={"SANDBOX_TEST_TOKEN": token, "SANDBOX_HOME": str(tmp_path / "h")})
    try:
        assert wait_for(lambda: grandchildren_up(token), 90), \
            "the candidate's children never started"
        since = len(terminal.seen)
        terminal.interrupt()
        assert terminal.wait(30) == 130
    finally:
        terminal.close()
    after = terminal.seen[since:]
    assert "Traceback" not in terminal.seen
    said = [line for line in after.splitlines()
            if line.strip() and "^C" not in line and "━" not in line]  # not progress bars
    assert said == ["interrupted; runs in progress were stopped."]
    assert nothing_left(token) == []


def test_output_past_the_limit_is_refused_not_written(tmp_path):
    """200 MiB of prints: output.log stops at the limit and the verdict names it."""
    done = run_cli(*verify_args(tmp_path, str(FIXTURES / "pipelines" / "prints_too_much.py")),
                   "--json", timeout=120)
    assert done.returncode == 1, done.stderr
    seed = json.loads(done.stdout)["seeds"][0]
    assert "limit of 64 MiB per file" in seed["error"]
    log = Path(seed["run_dir"]) / "output.log"
    assert log.stat().st_size <= 64 * 2**20


def test_a_huge_exception_message_is_cut_everywhere_it_is_shown(tmp_path):
    """A 10 MB message is quoted, cut, in the verdict, the terminal and the records."""
    pipeline = str(FIXTURES / "pipelines" / "huge_message.py")
    as_json = run_cli(*verify_args(tmp_path, pipeline), "--json", timeout=120)
    assert as_json.returncode == 1, as_json.stderr
    error = json.loads(as_json.stdout)["seeds"][0]["error"]
    assert error.startswith("raised ValueError at huge_message.py:2 (in train): learning rate 99")
    assert error.endswith("more characters]") and len(error) < 1000
    shown = run_cli(*verify_args(tmp_path, pipeline), timeout=120)
    assert shown.returncode == 1, shown.stderr
    assert "more characters]" in shown.stdout
    assert len(shown.stdout) + len(shown.stderr) < 50_000
    biggest = max(p.stat().st_size for p in (tmp_path / "runs").rglob("*.json"))
    assert biggest < 100_000
