"""What a candidate sees in the terminal (issue 14): single keys in watch and drill with the
terminal put back, the clock starting after the tool's own run, progress in `list`,
`next` and `reset`, `show` pointing at the workspace, times rounded one way, and verdicts
that name a stopped run's cause once. Real CLI processes, real history files, a pty.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox import drills
from sandbox.catalog import discover
from sandbox.history import History, tenths

from .conftest import FIXTURE_SCENARIOS, ROOT
from .terminal import Terminal

TINY = ["--scenarios", str(FIXTURE_SCENARIOS)]
FIX = FIXTURE_SCENARIOS / "tiny-v1" / "solution" / "config.yaml"
PIPELINES = Path(__file__).resolve().parent / "fixtures" / "pipelines"


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    return {"SANDBOX_HOME": str(tmp_path / "home"), "SANDBOX_LOGDIR": str(tmp_path / "runs")}


def cli(home: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The real entry point in a child process, with ``stdin`` as what is typed."""
    return subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300, input=stdin,
                          env={**os.environ, "COLUMNS": "200", **home})


def attempts(home: dict[str, str], scenario: str = "tiny-v1") -> list:
    return History.in_home(Path(home["SANDBOX_HOME"])).attempts(scenario)


# --- verdicts ---------------------------------------------------------------------------

def _rows(stdout: str) -> dict[str, str]:
    """The verdict table's rows by criterion (first line of each row only)."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) >= 3 and cells[0]:
            rows[cells[0]] = " | ".join(cells[2:])
    return rows


@pytest.mark.parametrize("pipeline, cause", [("nan_loss.py", "finite loss"),
                                             ("raises.py", "completes"),
                                             ("exits.py", "completes")])
def test_a_stopped_run_shows_its_cause_once(home, pipeline, cause):
    """One NaN (or one exception, or os._exit) is one FAIL row per seed, not five; the rows
    that failed only because nothing was returned say the run stopped, the same way
    whether the run raised or died (the budget row included).
    """
    result = cli(home, "verify", "tiny-v1", *TINY, "--pipeline", str(PIPELINES / pipeline),
                 "--logdir", home["SANDBOX_LOGDIR"])
    assert result.returncode == 1, result.stderr
    rows = _rows(result.stdout)
    failing = [name for name, cells in rows.items() if "FAIL" in cells]
    assert failing == [cause], rows
    for name in ("train loss", "test accuracy", "budget", "capacity"):
        assert rows[name].count("the run stopped early") == 2, (name, rows[name])
    summary = next(line for line in result.stdout.splitlines() if line.startswith("FAIL:"))
    assert f"({cause}; 2 stopped early)" in summary


def test_a_run_that_finished_at_chance_is_not_called_ok(home):
    """The shipped tiny-v1 learns nothing: `run` says it ran to the end and what fails."""
    result = cli(home, "run", "tiny-v1", *TINY, "--logdir", home["SANDBOX_LOGDIR"])
    assert result.returncode == 0, result.stderr
    first = next(line for line in result.stdout.splitlines() if "seed 0 on" in line)
    assert re.search(r"seed 0 on cpu: ran to the end and fails .*test accuracy", first), first


def test_the_paths_after_a_verdict_are_one_line_each_however_narrow(home, tmp_path):
    """Run folders hold spaces (``attempt-02 tiny-v1 solution (...)``); at 80 columns a
    path broken at one of them could not be copied, so each path line is printed whole."""
    logdir = tmp_path / ("a-log-folder-deep-enough-that-the-path-passes-80-columns " * 2)
    done = subprocess.run([sys.executable, "-m", "sandbox", "verify", "tiny-v1", *TINY,
                           "--set", "optimizer.lr=0.5", "--logdir", str(logdir)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "COLUMNS": "80", **home})
    assert done.returncode in (0, 1), done.stderr
    lines = done.stdout.splitlines()
    curves = next(line for line in lines if line.startswith("  curves: "))
    logs = next(line for line in lines if line.startswith("  logs:  "))
    assert len(curves) > 80 and Path(curves.removeprefix("  curves: ")).is_file(), curves
    assert Path(logs.removeprefix("  logs:  ")).is_dir(), logs
    assert any(line.endswith("beside your latest)") and "sandbox tb tiny-v1" in line
               for line in lines)
    deep_home = {**home, "SANDBOX_HOME": str(logdir / "home")}
    started = subprocess.run([sys.executable, "-m", "sandbox", "start", "tiny-v1", *TINY],
                             capture_output=True, text=True, cwd=ROOT, timeout=300,
                             env={**os.environ, "COLUMNS": "80", **deep_home})
    assert started.returncode == 0, started.stderr
    workspace = next(line for line in started.stdout.splitlines()
                     if line.startswith("Workspace: "))
    assert workspace.endswith("the ticket is TICKET.md)"), workspace
    assert Path(workspace.removeprefix("Workspace: ").split("  (edit")[0], "TICKET.md").is_file()


# --- the terminal: keys, restore, hints ------------------------------------------------

def test_watch_takes_single_keys_and_puts_the_terminal_back(home, tmp_path):
    assert cli(home, "start", "tiny-v1", *TINY).returncode == 0
    watch = Terminal("watch", "tiny-v1", *TINY, cwd=tmp_path, env=home)
    try:
        assert watch.line_mode()  # a fresh pty, before the watch changes anything
        watch.expect("for saves")
        assert not watch.line_mode(), "the watch should read single keys"
        watch.press("h")                                   # no Enter
        watch.expect("Hint 1 of 3: one")
        mark = len(watch.seen)
        watch.press("\r")                                  # Enter alone: verify now
        watch.expect("FAIL", since=mark)
        failed = watch.expect("for saves", since=watch.seen.index("FAIL", mark))
        assert "press h for a hint" in failed and "sandbox hint" not in failed
        watch.press("q")
        assert watch.wait() == 1
        assert "Stopped watching" in watch.seen
        assert watch.line_mode(), "the terminal was left without echo or line editing"
    finally:
        watch.close()
    assert attempts(home)[-1].hints == 1                   # the key press was one hint


def test_sigterm_during_a_watch_puts_the_terminal_back(home, tmp_path):
    assert cli(home, "start", "tiny-v1", *TINY).returncode == 0
    watch = Terminal("watch", "tiny-v1", *TINY, cwd=tmp_path, env=home)
    try:
        watch.expect("for saves")
        assert not watch.line_mode()
        os.kill(watch.proc.pid, signal.SIGTERM)
        assert watch.wait() == 143
        assert watch.line_mode() and "Traceback" not in watch.seen
    finally:
        watch.close()


# --- the clock ---------------------------------------------------------------------------

def test_the_drill_clock_starts_after_the_tools_own_run(home, tmp_path):
    drill = Terminal("drill", "--count", "1", "--tag", "fixture", "--minutes", "5", *TINY,
                     cwd=tmp_path, env=home)
    try:
        drill.expect("Running the shipped pipeline")
        before_run = time.time()
        drill.expect("for saves")
        after_run = time.time()
        drill.press("q")
        assert drill.wait() == 1
    finally:
        drill.close()
    started = attempts(home)[-1].started_at
    assert after_run - before_run > 1.0, "the broken run was too quick to tell"
    # the pty is read every 0.2 s: the clock may start a little before "for saves" shows
    assert started >= after_run - 0.6, (started - before_run, after_run - before_run)


def test_start_times_the_attempt_from_after_the_broken_run(home):
    """Most of `start` is the broken run (a new forkserver importing torch, then training):
    a clock started before it would start near the beginning of the command.
    """
    before = time.time()
    result = cli(home, "start", "tiny-v1", *TINY)
    after = time.time()
    assert result.returncode == 0, result.stderr
    assert "The clock is running" in result.stdout
    started = attempts(home)[-1].started_at
    assert before + 0.5 * (after - before) < started < after, (started - before, after - before)


def test_a_hint_before_start_keeps_its_clock(home):
    """A hint taken before `start` opened the attempt then; `start` does not move it."""
    assert cli(home, "hint", "tiny-v1", *TINY, stdin="").returncode == 0
    opened = attempts(home)[-1].started_at
    assert cli(home, "start", "tiny-v1", *TINY).returncode == 0
    assert attempts(home)[-1].started_at == opened


@pytest.mark.parametrize("seconds", [0.0, 0.04, 13.46, 13.5, 13.96, 59.999, 119.95, 3599.96,
                                     7384.4])
def test_a_time_reads_the_same_in_the_solve_message_and_in_stats(seconds):
    assert drills.clock(tenths(seconds)) == drills.clock(seconds)
    assert drills.clock(13.96) == "0m13s" and drills.clock(3725) == "1h02m"


def _solve(log: History, scenario: str, seconds: float, hints: int = 0) -> None:
    attempt = log.open_attempt(scenario, started_at=time.time() - seconds)
    for _ in range(hints):
        log.add_hint(attempt.id, 3)
    log.record_verification(attempt.id, scenario, passed=True)


def test_start_after_solves_shows_the_best_and_the_latest(home):
    assert cli(home, "start", "tiny-v1", *TINY).returncode == 0
    log = History.in_home(Path(home["SANDBOX_HOME"]))
    _solve(log, "tiny-v1", 40)
    _solve(log, "tiny-v1", 100)                       # the latest, and slower
    result = cli(home, "start", "tiny-v1", *TINY)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "Your best solve: 0m40s (3 solves)" not in text  # only two were solved
    assert "Your best solve: 0m40s (2 solves); the latest took 1m40s." in text, text


# --- progress: list, next, reset --------------------------------------------------------

def test_list_shows_status_and_best_time_without_creating_a_history(home):
    listed = cli(home, "list", "--json", *TINY)
    assert listed.returncode == 0, listed.stderr
    assert {row["status"] for row in json.loads(listed.stdout)} == {"new"}
    assert not Path(home["SANDBOX_HOME"]).exists()     # reading progress created nothing

    log = History.in_home(Path(home["SANDBOX_HOME"]))
    _solve(log, "tiny-v1", 75, hints=1)
    log.open_attempt("exploding-lr-v2")
    rows = {r["id"]: r for r in json.loads(cli(home, "list", "--json", *TINY).stdout)}
    assert rows["tiny-v1"]["status"] == "solved"
    assert 195 <= rows["tiny-v1"]["best_time_s"] < 197  # 75 s + one 2-minute hint
    assert rows["exploding-lr-v2"]["status"] == "started"
    assert rows["vanishing-gradients-v2"]["status"] == "new"

    table = cli(home, "list", *TINY)
    counted = drills.counted(list(discover([FIXTURE_SCENARIOS]).values()))
    assert re.search(rf"1 of {len(counted)} solved, 1 started\.", table.stdout), table.stdout
    assert re.search(r"tiny-v1 .*solved .*3m15s \(1 hint", table.stdout.replace("│", " "))


@pytest.mark.parametrize("columns", [80, 100, 160])
def test_list_gives_each_scenario_one_line_that_fits_the_terminal(home, columns):
    listed = subprocess.run([sys.executable, "-m", "sandbox", "list", *TINY],
                            capture_output=True, text=True, cwd=ROOT, timeout=60,
                            env={**os.environ, **home, "COLUMNS": str(columns)})
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    ids = list(discover([FIXTURE_SCENARIOS]))
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == len(ids), listed.stdout          # no row wraps onto a second line
    assert all(len(line) <= columns for line in lines), listed.stdout
    assert [row.split("│")[1].strip() for row in rows] == ids  # ids are never cut
    tags_shown = "tags" in lines[2]
    assert tags_shown == (columns >= 120), lines[2]
    assert ("Tags are shown at" in listed.stdout) == (not tags_shown)


def test_list_warns_and_still_lists_with_a_damaged_history(home):
    Path(home["SANDBOX_HOME"]).mkdir(parents=True)
    (Path(home["SANDBOX_HOME"]) / "history.sqlite3").write_bytes(b"not a database" * 100)
    result = cli(home, "list", *TINY)
    assert result.returncode == 0 and "tiny-v1" in result.stdout
    assert "progress not shown" in result.stderr and "history.sqlite3" in result.stderr


def test_next_resumes_a_started_scenario_then_the_easiest_new_one(home):
    scenarios = list(discover([FIXTURE_SCENARIOS]).values())
    log = History.in_home(Path(home["SANDBOX_HOME"]))
    first = drills.next_unsolved(scenarios, [])
    assert first.difficulty == min(s.difficulty for s in drills.counted(scenarios))
    assert drills.TUTORIAL not in first.tags
    log.open_attempt("tiny-v1")
    assert drills.next_unsolved(scenarios, log.attempts()).id == "tiny-v1"
    for scenario in drills.counted(scenarios):
        _solve(log, scenario.id, 10)
    assert drills.next_unsolved(scenarios, log.attempts()) is None
    done = cli(home, "next", *TINY)
    assert done.returncode == 0 and "You have solved all" in done.stdout
    tutorials = [s for s in scenarios if drills.TUTORIAL in s.tags]
    assert all(s not in drills.counted(scenarios) for s in tutorials)


def test_next_starts_the_scenario_it_names(home):
    log = History.in_home(Path(home["SANDBOX_HOME"]))
    scenarios = list(discover([FIXTURE_SCENARIOS]).values())
    for scenario in drills.counted(scenarios):
        if scenario.id != "tiny-v1":
            _solve(log, scenario.id, 10)
    result = cli(home, "next", *TINY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Next: tiny-v1")
    assert (Path(home["SANDBOX_HOME"]) / "tiny-v1" / "TICKET.md").is_file()
    assert attempts(home)[-1].status == "open"


def test_reset_one_backs_up_and_lays_down_fresh_files(home):
    assert cli(home, "start", "tiny-v1", *TINY).returncode == 0
    config = Path(home["SANDBOX_HOME"]) / "tiny-v1" / "config.yaml"
    config.write_text(config.read_text() + "# my edit\n")
    result = cli(home, "reset", "tiny-v1", *TINY)
    assert result.returncode == 0, result.stderr
    assert "# my edit" not in config.read_text()
    backups = list((Path(home["SANDBOX_HOME"]) / ".backups" / "tiny-v1").glob("*/config.yaml"))
    assert [b.read_text().endswith("# my edit\n") for b in backups] == [True]
    assert attempts(home)[-1].status == "abandoned"


def test_reset_all_moves_everything_aside_first(home):
    assert cli(home, "start", "tiny-v1", *TINY).returncode == 0
    ws = Path(home["SANDBOX_HOME"]) / "tiny-v1"
    (ws / "config.yaml").write_text("# my edit\n")
    refused = cli(home, "reset", "--all", *TINY, stdin="")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    declined = cli(home, "reset", "--all", *TINY, stdin="n\n")
    assert declined.returncode == 1 and (ws / "config.yaml").read_text() == "# my edit\n"

    result = cli(home, "reset", "--all", "--yes", *TINY)
    assert result.returncode == 0, result.stderr
    backup = Path(re.search(r"to (\S+reset-[\d-]+):", result.stdout).group(1))
    assert (backup / "tiny-v1" / "config.yaml").read_text() == "# my edit\n"
    kept = sqlite3.connect(backup / "history.sqlite3")
    assert kept.execute("SELECT count(*) FROM attempts").fetchone()[0] == 1
    assert not ws.exists() and attempts(home) == []
    listed = json.loads(cli(home, "list", "--json", *TINY).stdout)
    assert {row["status"] for row in listed} == {"new"}


@pytest.mark.parametrize("args", [["reset"], ["reset", "tiny-v1", "--all"]])
def test_reset_needs_one_scenario_or_all(home, args):
    result = cli(home, *args, *TINY)
    assert result.returncode == 2 and "--all" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- show ------------------------------------------------------------------------------

def test_show_points_at_the_workspace_and_warns_about_an_edited_catalog(home, tmp_path):
    shown = cli(home, "show", "exploding-lr-v2")
    text = " ".join(shown.stdout.split())
    workspace = str(Path(home["SANDBOX_HOME"]) / "exploding-lr-v2")
    assert f"puts them in {workspace}/" in text and "warning" not in text
    copy = tmp_path / "mine" / "lr-copy-v1"
    shutil.copytree(ROOT / "scenarios" / "exploding-lr-v2", copy)
    meta = copy / "scenario.yaml"
    meta.write_text(meta.read_text().replace("id: exploding-lr-v2", "id: lr-copy-v1"))
    assert "warning" not in cli(home, "show", "lr-copy-v1", "--scenarios",
                                str(copy.parent)).stdout  # the files are as measured
    config = copy / "config.yaml"
    config.write_text(config.read_text().replace("lr: 2.0", "lr: 1.5"))
    warned = " ".join(cli(home, "show", "lr-copy-v1", "--scenarios",
                          str(copy.parent)).stdout.split())
    assert "warning: the files in" in warned and "differ from those" in warned
    as_json = json.loads(cli(home, "show", "lr-copy-v1", "--json", "--scenarios",
                             str(copy.parent)).stdout)
    assert "differ from those" in as_json["catalog_edited"]


# --- pipes -------------------------------------------------------------------------------

def test_a_reader_that_stops_early_is_not_an_internal_error(home):
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "list", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, **home})
    proc.stdout.close()                                   # `| head -0`
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGPIPE and b"internal error" not in err, err
