"""The practice loop through the real CLI in child processes, in a temporary home:
start, verify, hints, the solution, watch, drills and stats (the quiz is in test_quiz.py).
The interactive commands are driven through a pseudo-terminal."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import FIXTURE_SCENARIOS, ROOT, run_cli
from .terminal import Terminal

TINY = ["--scenarios", str(FIXTURE_SCENARIOS)]
FIX = FIXTURE_SCENARIOS / "tiny-v1" / "solution" / "config.yaml"
SHIPPED = FIXTURE_SCENARIOS / "tiny-v1" / "config.yaml"


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    return {"SANDBOX_HOME": str(tmp_path / "home"), "SANDBOX_LOGDIR": str(tmp_path / "runs")}


def cli(home: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=home)


def stats(home: dict[str, str]) -> dict:
    result = cli(home, "stats", "--json", *TINY)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def row(numbers: dict, scenario_id: str = "tiny-v1") -> dict:
    return next(r for r in numbers["scenarios"] if r["id"] == scenario_id)


def test_the_whole_loop_start_fix_verify_stats_resume_reset(home):
    workspace = Path(home["SANDBOX_HOME"]) / "tiny-v1"
    started = cli(home, "start", "tiny-v1", *TINY)
    assert started.returncode == 0, started.stderr
    assert (workspace / "TICKET.md").is_file()
    assert "loss/train (log scale)" in started.stdout          # the text chart
    assert "not-learning" in started.stdout                     # the symptom
    assert "compare runs: sandbox tb tiny-v1" in started.stdout
    png = re.search(r"curves: (.+\.png)", started.stdout).group(1)
    assert Path(png).is_file()

    failed = cli(home, "verify", "tiny-v1", *TINY)
    assert failed.returncode == 1 and "your workspace" in failed.stdout
    shutil.copyfile(FIX, workspace / "config.yaml")
    passed = cli(home, "verify", "tiny-v1", *TINY)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Solved tiny-v1 in" in passed.stdout and "500x too small" in passed.stdout

    numbers = stats(home)
    tiny = row(numbers)
    assert tiny["solved"] and tiny["attempts"] == 1 and tiny["verifications"] == 2
    assert tiny["best_time_s"] is not None and tiny["best_time_s"] > 0

    again = cli(home, "start", "tiny-v1", *TINY)
    assert again.returncode == 0 and "Resuming" in again.stdout
    assert (workspace / "config.yaml").read_text() == FIX.read_text()

    reset = cli(home, "start", "tiny-v1", "--reset", *TINY)
    assert reset.returncode == 0, reset.stderr
    backup = Path(re.search(r"backed up to (\S+)", reset.stdout).group(1))
    assert (backup / "config.yaml").read_text() == FIX.read_text()
    assert (workspace / "config.yaml").read_text() == SHIPPED.read_text()
    assert row(stats(home))["attempts"] == 2


def test_hints_are_recorded_and_added_to_the_time(home):
    assert cli(home, "start", "tiny-v1", *TINY).returncode == 0
    first = cli(home, "hint", "tiny-v1", *TINY)
    second = cli(home, "hint", "tiny-v1", *TINY)
    assert "Hint 1 of 3: one" in first.stdout and "Hint 2 of 3: two" in second.stdout
    shutil.copyfile(FIX, Path(home["SANDBOX_HOME"]) / "tiny-v1" / "config.yaml")
    passed = cli(home, "verify", "tiny-v1", *TINY)
    assert passed.returncode == 0 and "2 hint(s) x 2m" in passed.stdout
    tiny = row(stats(home))
    assert tiny["hints"] == 2 and tiny["best_time_s"] >= 240


def test_verify_without_a_workspace_or_with_shipped_runs_the_shipped_pipeline(home):
    plain = cli(home, "verify", "tiny-v1", "--json", *TINY)
    assert plain.returncode == 1 and json.loads(plain.stdout)["candidate"] == "shipped"
    assert cli(home, "start", "tiny-v1", *TINY).returncode == 0
    shutil.copyfile(FIX, Path(home["SANDBOX_HOME"]) / "tiny-v1" / "config.yaml")
    shipped = cli(home, "verify", "tiny-v1", "--shipped", "--json", *TINY)
    assert shipped.returncode == 1 and json.loads(shipped.stdout)["candidate"] == "shipped"
    mine = cli(home, "verify", "tiny-v1", "--json", *TINY)
    result = json.loads(mine.stdout)
    assert mine.returncode == 0 and result["candidate"] == "workspace"
    assert result["attempt"]["solved_now"] and result["attempt"]["status"] == "solved"


def test_a_workspace_that_breaks_the_rules_is_bad_input(home):
    assert cli(home, "start", "tiny-v1", *TINY).returncode == 0
    config = Path(home["SANDBOX_HOME"]) / "tiny-v1" / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 3", "epochs: 30"))
    result = cli(home, "verify", "tiny-v1", *TINY)
    assert result.returncode == 2 and "train.epochs" in result.stderr
    assert f"{config}: train.epochs: locked" in result.stderr  # the file, not a flag never given
    assert "--config" not in result.stderr and "Traceback" not in result.stderr


def test_two_verifications_at_once_are_both_recorded(home):
    assert cli(home, "start", "tiny-v1", *TINY).returncode == 0
    shutil.copyfile(FIX, Path(home["SANDBOX_HOME"]) / "tiny-v1" / "config.yaml")
    env = {**__import__("os").environ, "COLUMNS": "200", **home}
    both = [subprocess.Popen([sys.executable, "-m", "sandbox", "verify", "tiny-v1", "--json",
                              *TINY], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [json.loads(p.communicate(timeout=120)[0]) for p in both]
    assert [p.returncode for p in both] == [0, 0]
    assert sorted(r["attempt"]["solved_now"] for r in results) == [False, True]
    tiny = row(stats(home))
    assert tiny["verifications"] == 2 and tiny["attempts"] == 1 and tiny["solved"]


def test_solution_asks_first_and_marks_the_attempt_revealed(home, tmp_path):
    assert cli(home, "start", "tiny-v1", *TINY).returncode == 0
    declined = Terminal("solution", "tiny-v1", *TINY, cwd=tmp_path, env=home)
    try:
        declined.expect("Show it? [y/N]")
        declined.send("n")
        assert declined.wait() == 1
        assert "Nothing shown" in declined.seen and "+++ solution/" not in declined.seen
    finally:
        declined.close()
    assert row(stats(home))["revealed"] == 0
    shown = Terminal("solution", "tiny-v1", *TINY, cwd=tmp_path, env=home)
    try:
        shown.expect("Show it? [y/N]")
        shown.send("y")
        assert shown.wait() == 0
        assert "--- shipped/config.yaml" in shown.seen and "+  lr: 0.3" in shown.seen
    finally:
        shown.close()
    assert row(stats(home))["revealed"] == 1
    closed = cli(home, "solution", "tiny-v1", *TINY)  # stdin is not a terminal here
    assert closed.returncode == 2 and "--yes" in closed.stderr


def test_watch_verifies_on_save_until_the_fix_passes(home, tmp_path):
    assert cli(home, "start", "tiny-v1", *TINY).returncode == 0
    watch = Terminal("watch", "tiny-v1", *TINY, cwd=tmp_path, env=home)
    try:
        watch.expect("for saves")
        watch.send("")                                           # Enter: verify now
        watch.expect("FAIL")
        shutil.copyfile(FIX, Path(home["SANDBOX_HOME"]) / "tiny-v1" / "config.yaml")
        watch.expect("Solved tiny-v1 in")
        assert watch.wait() == 0
    finally:
        watch.close()
    assert row(stats(home))["solved"]


def test_ctrl_c_leaves_watch_cleanly_and_stops_its_runs(home, tmp_path):
    assert cli(home, "start", "tiny-v1", *TINY).returncode == 0
    pipeline = Path(home["SANDBOX_HOME"]) / "tiny-v1" / "pipeline.py"
    pipeline.write_text(  # a run deaf to Ctrl-C: only the harness can stop it
        "import signal, time\n\ndef train(cfg, data, run):\n"
        "    signal.signal(signal.SIGINT, signal.SIG_IGN)\n    time.sleep(60)\n")
    watch = Terminal("watch", "tiny-v1", *TINY, cwd=tmp_path, env=home)
    try:
        watch.expect("for saves")
        watch.send("")
        watch.expect("workspace seed")                          # a verification is running
        time.sleep(1.0)
        signals = _signal_state(watch.proc.pid)  # what the watch does with a SIGINT
        watch.interrupt()
        assert watch.wait() == 130, signals
        assert "Stopped watching" in watch.seen and "Traceback" not in watch.seen
        deadline = time.monotonic() + 4  # well inside the fixture's 6 s time limit
        while _group(watch.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _group(watch.proc.pid), "training runs outlived the watch"
    finally:
        watch.close()
    assert (pipeline.read_text()).endswith("time.sleep(60)\n")    # the user's file is untouched


def _signal_state(pid: int) -> str:
    """The process's blocked, ignored and caught signal masks, for a failure message."""
    with open(f"/proc/{pid}/status") as status:
        return " ".join(line.strip() for line in status
                        if line.startswith(("SigBlk", "SigIgn", "SigCgt")))


def _group(pgid: int) -> list[str]:
    """Live (not zombie) processes in a process group."""
    ps = subprocess.run(["ps", "-o", "stat=", "-g", str(pgid)], capture_output=True, text=True)
    return [s for s in ps.stdout.split() if not s.startswith("Z")]


def test_a_drill_from_start_to_a_solved_recorded_scenario(home, tmp_path):
    drill = Terminal("drill", "--count", "1", "--tag", "fixture", "--minutes", "5", *TINY,
                     cwd=tmp_path, env=home)
    try:
        drill.expect("1 of 1: tiny-v1")
        drill.expect("not-learning")                             # the broken run, diagnosed
        drill.expect("for saves")
        drill.press("h")                                         # one key, no Enter
        drill.expect("Hint 1 of 3: one")
        shutil.copyfile(FIX, Path(home["SANDBOX_HOME"]) / "tiny-v1" / "config.yaml")
        drill.expect("Drill summary")
        assert drill.wait() == 0
        assert re.search(r"tiny-v1\s+│ solved\s+│ \dm\d\ds \+ 1 hint", drill.seen)
    finally:
        drill.close()
    numbers = stats(home)
    assert row(numbers)["solved"] and numbers["totals"]["drills"] == 1


def test_a_drill_ends_when_time_is_up(home, tmp_path):
    drill = Terminal("drill", "--count", "1", "--tag", "fixture", "--minutes", "0.1", *TINY,
                     cwd=tmp_path, env=home)
    try:
        drill.expect("Time is up", timeout=60)
        assert drill.wait() == 1
        assert re.search(r"tiny-v1\s+│ timed-out", drill.seen)
    finally:
        drill.close()
    assert not row(stats(home))["solved"]


def test_a_mock_interview_shows_the_curves_but_not_the_diagnosis(home, tmp_path):
    drill = Terminal("drill", "--interview", "--tag", "fixture", *TINY, cwd=tmp_path, env=home)
    try:
        drill.expect("Mock interview")
        drill.expect("for saves")
        drill.send("")                                           # a failing verification
        drill.expect("FAIL")
        drill.expect("for saves", since=drill.seen.index("FAIL"))
        assert "loss/train (log scale)" in drill.seen and "not-learning" not in drill.seen
        drill.press("q")
        assert drill.wait() == 1
        assert re.search(r"tiny-v1\s+│ abandoned", drill.seen)
    finally:
        drill.close()


def test_stats_on_a_new_home_and_on_a_corrupt_history(home):
    fresh = cli(home, "stats", *TINY)
    assert fresh.returncode == 0 and "Nothing recorded yet" in fresh.stdout
    assert not Path(home["SANDBOX_HOME"]).exists()
    Path(home["SANDBOX_HOME"]).mkdir()
    db = Path(home["SANDBOX_HOME"]) / "history.sqlite3"
    db.write_bytes(b"garbage" * 500)
    broken = cli(home, "stats")
    assert broken.returncode == 2 and str(db) in broken.stderr
    assert "Traceback" not in broken.stderr and db.read_bytes() == b"garbage" * 500


def test_the_explanation_after_a_pass_fits_the_fix_that_was_made(home):
    workspace = Path(home["SANDBOX_HOME"]) / "tiny-v1"
    assert cli(home, "start", "tiny-v1", *TINY).returncode == 0
    decoy = FIXTURE_SCENARIOS / "tiny-v1" / "decoys" / "still-too-small"
    shutil.copyfile(decoy / "config.yaml", workspace / "config.yaml")
    failed = cli(home, "verify", "tiny-v1", *TINY)
    assert failed.returncode == 1
    assert "This looks like a known plausible-but-wrong fix (raise the learning rate 5x): " \
           "still 100x too small" in failed.stdout
    adam = FIXTURE_SCENARIOS / "tiny-v1" / "alternatives" / "adam"
    for name in ("config.yaml", "pipeline.py"):
        shutil.copyfile(adam / name, workspace / name)
    passed = cli(home, "verify", "tiny-v1", *TINY)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Your fix matches a known alternative, 'adam' (Adam at 0.01)" in passed.stdout
    assert "The reference fix, beside yours:" in passed.stdout
    assert "+  lr: 0.3" in passed.stdout  # the reference diff itself
