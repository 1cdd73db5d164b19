"""The practice history: one SQLite file in the home folder (the standard library's sqlite3).

Every write is one ``BEGIN IMMEDIATE`` transaction, so a process killed mid-write leaves
the database as it was before that write, and two processes writing at once (two
verifications finishing together) queue on the lock instead of losing a record. WAL mode
lets a reader (``sandbox stats``) run while a writer holds the lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SandboxError

DB_NAME = "history.sqlite3"
HINT_PENALTY_S = 120  # each hint adds two minutes to the time a solve scores
BUSY_TIMEOUT_S = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    scenario TEXT NOT NULL,
    mode TEXT NOT NULL,               -- practice | drill | interview
    drill_id INTEGER,
    started_at REAL NOT NULL,
    finished_at REAL,
    status TEXT NOT NULL,             -- open | solved | skipped | timed-out | abandoned
    hints INTEGER NOT NULL DEFAULT 0,
    revealed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS attempts_by_scenario ON attempts (scenario, id);
CREATE TABLE IF NOT EXISTS verifications (
    id INTEGER PRIMARY KEY,
    attempt_id INTEGER REFERENCES attempts (id),
    scenario TEXT NOT NULL,
    at REAL NOT NULL,
    passed INTEGER NOT NULL,
    failed TEXT NOT NULL,             -- the failed criteria, comma-separated
    wall_time_s REAL,
    run_group TEXT
);
CREATE TABLE IF NOT EXISTS hints (
    id INTEGER PRIMARY KEY,
    attempt_id INTEGER NOT NULL REFERENCES attempts (id),
    number INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS drills (
    id INTEGER PRIMARY KEY,
    preset TEXT NOT NULL,
    count INTEGER NOT NULL,
    minutes REAL NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS quiz_answers (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    scenario TEXT NOT NULL,
    question TEXT NOT NULL,           -- cause | fix
    chosen TEXT NOT NULL,
    correct TEXT NOT NULL,
    is_correct INTEGER NOT NULL
);
PRAGMA user_version = 1;
"""


class HistoryError(SandboxError):
    """The history database cannot be read or written."""


@dataclass(frozen=True)
class Attempt:
    id: int
    scenario: str
    mode: str
    drill_id: int | None
    started_at: float
    finished_at: float | None
    status: str
    hints: int
    revealed: bool

    @property
    def duration_s(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    @property
    def score_s(self) -> float | None:
        """The time a solve counts for: wall time plus the hint penalty; none if revealed."""
        if self.status != "solved" or self.revealed or self.duration_s is None:
            return None
        return self.duration_s + HINT_PENALTY_S * self.hints

    def elapsed_s(self, now: float | None = None) -> float:
        end = self.finished_at if self.finished_at is not None else (now or time.time())
        return end - self.started_at


class History:
    """One history database file; each method is one short transaction."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None

    @classmethod
    def in_home(cls, home: Path) -> History:
        return cls(Path(home) / DB_NAME)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
                conn.row_factory = sqlite3.Row
                if conn.execute("PRAGMA user_version").fetchone()[0] < 1:
                    conn.execute("PRAGMA journal_mode=WAL")  # persists in the file
                    conn.executescript(SCHEMA)
            except (sqlite3.DatabaseError, OSError) as exc:
                damaged = isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc)
                advice = ("move it aside and a new one will be started" if damaged else
                          "check that its folder exists, is writable and has space, or set "
                          "SANDBOX_HOME to one that does")
                raise HistoryError(f"the history database {self.path} cannot be opened "
                                   f"({exc}). It was left untouched; {advice}.") from None
            self._conn = conn
        return self._conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: all of it is committed, or none of it."""
        conn = self._db()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise HistoryError(self._unwritable(exc)) from None
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:  # a full disk shows here, at the first write
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise HistoryError(self._unwritable(exc)) from None
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _unwritable(self, exc: Exception) -> str:
        """Why a write failed, with advice that fits the cause: only a damaged file is
        worth moving aside, never a full disk or a read-only folder.
        """
        text = str(exc).lower()
        if "full" in text:
            advice = "the disk it is on is full; free some space"
        elif "readonly" in text or "read-only" in text:
            advice = "it, or its folder, is read-only; make it writable or set SANDBOX_HOME"
        elif "locked" in text or "busy" in text:
            advice = "another sandbox command is writing to it; try again when that finishes"
        else:
            advice = "it may be damaged; move it aside and a new one will be started"
        return f"the history database {self.path} cannot be written ({exc}): {advice}. " \
               "Nothing was recorded."

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        if self._conn is None and not self.path.exists():
            return []  # reading never creates the file: `sandbox stats` on a new home
        try:
            return self._db().execute(sql, tuple(args)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"the history database {self.path} cannot be read ({exc}). "
                               "It was left untouched; move it aside to start a new one.") \
                from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # attempts -----------------------------------------------------------------

    def attempt(self, attempt_id: int) -> Attempt:
        return _attempt(self._read("SELECT * FROM attempts WHERE id = ?", [attempt_id])[0])

    def latest(self, scenario: str) -> Attempt | None:
        """The scenario's newest attempt, whatever its status."""
        rows = self._read("SELECT * FROM attempts WHERE scenario = ? ORDER BY id DESC LIMIT 1",
                          [scenario])
        return _attempt(rows[0]) if rows else None

    def attempts(self, scenario: str | None = None) -> list[Attempt]:
        if scenario is None:
            return [_attempt(r) for r in self._read("SELECT * FROM attempts ORDER BY id")]
        return [_attempt(r) for r in self._read(
            "SELECT * FROM attempts WHERE scenario = ? ORDER BY id", [scenario])]

    def open_attempt(self, scenario: str, *, mode: str = "practice", drill_id: int | None = None,
                     started_at: float | None = None) -> Attempt:
        """A new attempt. An attempt still open for the scenario becomes 'abandoned', and
        its hints and reveal carry over: what you have seen, you have seen.
        """
        now = time.time()
        with self._write() as db:
            previous = db.execute("SELECT hints, revealed FROM attempts WHERE scenario = ? "
                                  "AND status = 'open' ORDER BY id DESC LIMIT 1",
                                  [scenario]).fetchone()
            db.execute("UPDATE attempts SET status = 'abandoned', finished_at = ? "
                       "WHERE scenario = ? AND status = 'open'", [now, scenario])
            cursor = db.execute(
                "INSERT INTO attempts (scenario, mode, drill_id, started_at, status, hints, "
                "revealed) VALUES (?, ?, ?, ?, 'open', ?, ?)",
                [scenario, mode, drill_id, started_at or now,
                 previous["hints"] if previous else 0, previous["revealed"] if previous else 0])
            new_id = cursor.lastrowid
        return self.attempt(new_id)

    def start_clock(self, attempt_id: int) -> Attempt:
        """Start an untouched open attempt's clock now: the broken run the tool shows
        first is the tool's time, not the candidate's. An attempt with a hint or a
        verification of its own keeps the time it has.
        """
        with self._write() as db:
            db.execute("UPDATE attempts SET started_at = ? WHERE id = ? AND status = 'open' "
                       "AND NOT EXISTS (SELECT 1 FROM hints WHERE attempt_id = ?) "
                       "AND NOT EXISTS (SELECT 1 FROM verifications WHERE attempt_id = ?)",
                       [time.time(), attempt_id, attempt_id, attempt_id])
        return self.attempt(attempt_id)

    def close_attempt(self, attempt_id: int, status: str) -> Attempt:
        """End an open attempt as skipped, timed-out or abandoned (a solved one stays so)."""
        with self._write() as db:
            db.execute("UPDATE attempts SET status = ?, finished_at = ? "
                       "WHERE id = ? AND status = 'open'", [status, time.time(), attempt_id])
        return self.attempt(attempt_id)

    def add_hint(self, attempt_id: int, available: int) -> tuple[int, bool]:
        """Count one more hint, up to ``available``; returns (hints used, newly counted)."""
        with self._write() as db:
            used = db.execute("SELECT hints FROM attempts WHERE id = ?",
                              [attempt_id]).fetchone()["hints"]
            if used >= available:
                return used, False
            db.execute("UPDATE attempts SET hints = ? WHERE id = ?", [used + 1, attempt_id])
            db.execute("INSERT INTO hints (attempt_id, number, at) VALUES (?, ?, ?)",
                       [attempt_id, used + 1, time.time()])
        return used + 1, True

    def reveal(self, attempt_id: int) -> None:
        with self._write() as db:
            db.execute("UPDATE attempts SET revealed = 1 WHERE id = ?", [attempt_id])

    def record_verification(self, attempt_id: int | None, scenario: str, *, passed: bool,
                            failed: Iterable[str] = (), wall_time_s: float | None = None,
                            run_group: str | None = None) -> bool:
        """Record one verification; a pass solves the attempt if it is still open.

        Returns whether this verification is the one that solved it.
        """
        now = time.time()
        with self._write() as db:
            db.execute("INSERT INTO verifications (attempt_id, scenario, at, passed, failed, "
                       "wall_time_s, run_group) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [attempt_id, scenario, now, int(passed), ",".join(failed), wall_time_s,
                        run_group])
            if not (passed and attempt_id is not None):
                return False
            cursor = db.execute("UPDATE attempts SET status = 'solved', finished_at = ? "
                                "WHERE id = ? AND status = 'open'", [now, attempt_id])
            return cursor.rowcount == 1

    def verifications(self, scenario: str | None = None) -> list[sqlite3.Row]:
        if scenario is None:
            return self._read("SELECT * FROM verifications ORDER BY id")
        return self._read("SELECT * FROM verifications WHERE scenario = ? ORDER BY id",
                          [scenario])

    # drills and quizzes ---------------------------------------------------------

    def start_drill(self, preset: str, count: int, minutes: float) -> int:
        with self._write() as db:
            cursor = db.execute("INSERT INTO drills (preset, count, minutes, started_at) "
                                "VALUES (?, ?, ?, ?)", [preset, count, minutes, time.time()])
            return int(cursor.lastrowid)

    def finish_drill(self, drill_id: int) -> None:
        with self._write() as db:
            db.execute("UPDATE drills SET finished_at = ? WHERE id = ?", [time.time(), drill_id])

    def record_quiz_answer(self, scenario: str, question: str, chosen: str,
                           correct: str) -> None:
        with self._write() as db:
            db.execute("INSERT INTO quiz_answers (at, scenario, question, chosen, correct, "
                       "is_correct) VALUES (?, ?, ?, ?, ?, ?)",
                       [time.time(), scenario, question, chosen, correct,
                        int(chosen == correct)])

    def quiz_answers(self) -> list[sqlite3.Row]:
        return self._read("SELECT * FROM quiz_answers ORDER BY id")

    def drills(self) -> list[sqlite3.Row]:
        return self._read("SELECT * FROM drills ORDER BY id")


def _attempt(row: sqlite3.Row) -> Attempt:
    return Attempt(row["id"], row["scenario"], row["mode"], row["drill_id"], row["started_at"],
                   row["finished_at"], row["status"], row["hints"], bool(row["revealed"]))


# stats ---------------------------------------------------------------------------


def stats(history: History, catalog: dict[str, str], today: dt.date | None = None
          ) -> dict[str, Any]:
    """Per scenario (every catalog id, then any id only the history knows) and totals.

    ``catalog`` maps scenario id to title. A scenario counts as solved when an attempt
    passed without the solution shown; best time is the lowest score (time plus hints).
    """
    attempts = history.attempts()
    verifications = history.verifications()
    ids = list(catalog) + sorted({a.scenario for a in attempts} - set(catalog))
    rows = [_scenario_stats(sid, catalog.get(sid), [a for a in attempts if a.scenario == sid],
                            sum(v["scenario"] == sid for v in verifications)) for sid in ids]
    answers = history.quiz_answers()
    solved_days = {dt.date.fromtimestamp(a.finished_at) for a in attempts
                   if a.status == "solved" and a.finished_at is not None}
    current, longest = streaks(solved_days, today or dt.date.today())
    return {
        "home": str(history.path.parent),
        "scenarios": rows,
        "totals": {
            "scenarios": len(catalog),
            "solved": sum(r["solved"] for r in rows if r["id"] in catalog),
            "attempts": len(attempts),
            "verifications": len(verifications),
            "hints": sum(a.hints for a in attempts),
            "revealed": sum(a.revealed for a in attempts),
            "practice_time_s": tenths(sum(a.elapsed_s() for a in attempts
                                          if a.finished_at is not None)),
            "drills": len(history.drills()),
            "quiz_answers": len(answers),
            "quiz_correct": sum(r["is_correct"] for r in answers),
        },
        "streaks": {"current_days": current, "longest_days": longest},
    }


def _scenario_stats(sid: str, title: str | None, attempts: list[Attempt],
                    n_verifications: int) -> dict[str, Any]:
    solves = [a for a in attempts if a.score_s is not None]
    best = min(solves, key=lambda a: a.score_s or 0.0, default=None)
    return {
        "id": sid,
        "title": title or "(no longer in the catalog)",
        "solved": bool(solves),
        "best_time_s": None if best is None else tenths(best.score_s or 0.0),
        "best_hints": None if best is None else best.hints,
        "attempts": len(attempts),
        "hints": sum(a.hints for a in attempts),
        "revealed": sum(a.revealed for a in attempts),
        "verifications": n_verifications,
        "open": any(a.status == "open" for a in attempts),
    }


def tenths(seconds: float) -> float:
    """Seconds cut down to a tenth: rounding would print 13.46 s as 0m14s here and as
    0m13s in the solve message (both cut down to the whole second).
    """
    return math.floor(seconds * 10) / 10


def streaks(days: set[dt.date], today: dt.date) -> tuple[int, int]:
    """(current, longest) runs of consecutive days with a solve; the current run may end
    yesterday, so a streak is not lost before today's practice.
    """
    longest = run = 0
    previous: dt.date | None = None
    for day in sorted(days):
        run = run + 1 if previous is not None and (day - previous).days == 1 else 1
        longest, previous = max(longest, run), day
    current = 0
    day = today if today in days else today - dt.timedelta(days=1)
    while day in days:
        current, day = current + 1, day - dt.timedelta(days=1)
    return current, longest
