"""The history database: records, the rules of the clock, streaks, and its robustness
against concurrent writers and a writer killed mid-write."""

from __future__ import annotations

import datetime as dt
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.history import HINT_PENALTY_S, History, HistoryError, stats, streaks

from .conftest import ROOT


@pytest.fixture
def log(tmp_path: Path) -> History:
    return History.in_home(tmp_path)


def test_a_pass_solves_the_open_attempt_once(log):
    attempt = log.open_attempt("a-v1")
    assert log.record_verification(attempt.id, "a-v1", passed=False, failed=["train loss"]) \
        is False
    assert log.record_verification(attempt.id, "a-v1", passed=True) is True
    assert log.record_verification(attempt.id, "a-v1", passed=True) is False
    solved = log.attempt(attempt.id)
    assert solved.status == "solved" and solved.duration_s is not None
    assert [v["passed"] for v in log.verifications()] == [0, 1, 1]


def test_hints_are_counted_up_to_the_number_available_and_cost_time(log):
    attempt = log.open_attempt("a-v1")
    assert [log.add_hint(attempt.id, 3) for _ in range(4)] == [
        (1, True), (2, True), (3, True), (3, False)]
    log.record_verification(attempt.id, "a-v1", passed=True)
    solved = log.attempt(attempt.id)
    assert solved.hints == 3
    assert solved.score_s == pytest.approx(solved.duration_s + 3 * HINT_PENALTY_S)


def test_a_revealed_solve_has_no_score_and_does_not_count_as_solved(log):
    attempt = log.open_attempt("a-v1")
    log.reveal(attempt.id)
    log.record_verification(attempt.id, "a-v1", passed=True)
    assert log.attempt(attempt.id).score_s is None
    row = stats(log, {"a-v1": "A"})["scenarios"][0]
    assert (row["solved"], row["revealed"], row["attempts"]) == (False, 1, 1)


def test_a_new_attempt_abandons_the_open_one_and_keeps_what_was_seen(log):
    first = log.open_attempt("a-v1")
    log.add_hint(first.id, 3)
    log.reveal(first.id)
    second = log.open_attempt("a-v1")
    assert log.attempt(first.id).status == "abandoned"
    assert (second.status, second.hints, second.revealed) == ("open", 1, True)


def test_stats_cover_every_catalog_scenario_and_the_totals(log):
    done = log.open_attempt("a-v1")
    log.add_hint(done.id, 3)
    log.record_verification(done.id, "a-v1", passed=True)
    log.open_attempt("b-v1")
    log.record_quiz_answer("a-v1", "cause", "x", "x")
    log.record_quiz_answer("a-v1", "fix", "y", "z")
    numbers = stats(log, {"a-v1": "A", "b-v1": "B", "c-v1": "C"})
    rows = {r["id"]: r for r in numbers["scenarios"]}
    assert rows["a-v1"]["solved"] and rows["a-v1"]["best_hints"] == 1
    assert rows["a-v1"]["best_time_s"] >= HINT_PENALTY_S
    assert rows["b-v1"]["open"] and not rows["b-v1"]["solved"]
    assert rows["c-v1"]["attempts"] == 0
    totals = numbers["totals"]
    assert (totals["solved"], totals["attempts"], totals["hints"]) == (1, 2, 1)
    assert (totals["quiz_answers"], totals["quiz_correct"]) == (2, 1)
    assert numbers["streaks"]["current_days"] == 1


def test_streaks_count_consecutive_days_and_survive_until_the_day_is_over():
    day = dt.date(2026, 11, 24)
    days = {day - dt.timedelta(d) for d in (1, 2, 3, 7, 8)}
    assert streaks(days, day) == (3, 3)           # nothing today yet: the run still counts
    assert streaks(days | {day}, day) == (4, 4)
    assert streaks(days, day + dt.timedelta(2)) == (0, 3)
    assert streaks(set(), day) == (0, 0)


def test_reading_a_missing_database_creates_nothing(tmp_path):
    log = History.in_home(tmp_path / "home")
    assert stats(log, {"a-v1": "A"})["totals"]["attempts"] == 0
    assert not (tmp_path / "home").exists()


def test_a_corrupt_database_is_a_clear_error_and_is_left_alone(tmp_path):
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError, match="cannot be opened"):
        History(path).open_attempt("a-v1")
    assert path.read_bytes() == b"this is not a database" * 100


WRITER = """
import sys
from sandbox.history import History
log = History.in_home(sys.argv[1])
attempt = log.open_attempt("a-v1")
n = 0
while True:
    log.record_verification(attempt.id, "a-v1", passed=False, failed=["train loss"],
                            wall_time_s=1.0, run_group="x" * 2000)
    n += 1
    print(n, flush=True)
"""


def test_a_writer_killed_mid_write_leaves_a_readable_database_with_every_commit(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    acknowledged = 0
    deadline = time.monotonic() + 30
    while acknowledged < 200 and time.monotonic() < deadline:
        acknowledged = int(child.stdout.readline())
    child.send_signal(signal.SIGKILL)
    child.wait()
    acknowledged = max([acknowledged, *map(int, child.stdout.read().split())])
    assert acknowledged >= 200
    db = sqlite3.connect(tmp_path / "history.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = db.execute("SELECT COUNT(*) FROM verifications").fetchone()[0]
    assert acknowledged <= rows <= acknowledged + 1  # + the one committed but not printed
    numbers = stats(History.in_home(tmp_path), {"a-v1": "A"})
    assert numbers["totals"]["verifications"] == rows


CONCURRENT = """
import sys
from sandbox.history import History
log = History.in_home(sys.argv[1])
for _ in range(100):
    log.record_verification(int(sys.argv[2]), "a-v1", passed=False)
"""


def test_concurrent_writers_lose_no_record(tmp_path, log):
    attempt = log.open_attempt("a-v1")
    children = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(tmp_path),
                                  str(attempt.id)], cwd=ROOT) for _ in range(4)]
    assert [c.wait(timeout=120) for c in children] == [0, 0, 0, 0]
    assert len(log.verifications()) == 400
