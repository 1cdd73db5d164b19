"""Fault injection: `verify`, `start --reset` and `drill` killed with SIGKILL at random
points, 30 times over one home. However a command dies, nothing it started stays alive,
no edit the user made to the workspace is lost (it is in the workspace or in a backup),
and the history database passes SQLite's own integrity check.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from .conftest import FIXTURE_SCENARIOS, ROOT, run_cli
from .test_processes import nothing_left

KILLS = 30
COMMANDS = {
    "verify": ["verify", "tiny-v1"],
    "start --reset": ["start", "tiny-v1", "--reset"],
    "drill": ["drill", "--count", "1", "--minutes", "5"],
}


def edits_found(home: Path, marker: str) -> bool:
    """The edit is in the workspace, or in one of its backups."""
    copies = [home / "tiny-v1" / "pipeline.py",
              *(home / ".backups" / "tiny-v1").glob("*/pipeline.py")]
    return any(marker in p.read_text(errors="replace") for p in copies if p.is_file())


def integrity(database: Path) -> str:
    with sqlite3.connect(database) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


@pytest.mark.slow
def test_sigkill_at_random_points_loses_nothing_and_leaves_nothing(tmp_path):
    rng = random.Random(int(os.environ.get("SANDBOX_FAULT_SEED", "20261202")))
    home = tmp_path / "home"
    env = {"SANDBOX_HOME": str(home)}
    scenarios = ["--scenarios", str(FIXTURE_SCENARIOS), "--logdir", str(tmp_path / "runs")]
    started = run_cli("start", "tiny-v1", *scenarios, env=env)
    assert started.returncode == 0, started.stderr
    markers: list[str] = []
    kills = 0
    for kill in range(2 * KILLS):
        if kills == KILLS:
            break
        workspace_file = home / "tiny-v1" / "pipeline.py"
        if workspace_file.is_file():  # the user keeps working between the kills
            marker = f"# edit {kill}: {uuid.uuid4().hex}"
            with workspace_file.open("a") as handle:
                handle.write(f"\n{marker}\n")
            markers.append(marker)
        name = rng.choice(sorted(COMMANDS))
        after_s = rng.uniform(0.2, 6.0)
        token = uuid.uuid4().hex
        proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox", *COMMANDS[name], *scenarios],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=ROOT, env={**os.environ, **env, "SANDBOX_TEST_TOKEN": token})
        try:
            proc.wait(timeout=after_s)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        where = f"kill {kill}: {name} after {after_s:.1f} s"
        assert nothing_left(token) == [], f"{where} left processes running"
        lost = [m for m in markers if not edits_found(home, m)]
        assert not lost, f"{where} lost the edits {lost}"
        assert integrity(home / "history.sqlite3") == "ok", where
    assert kills == KILLS
    assert len(markers) >= kills - 3  # the workspace was there to edit nearly every time
    assert run_cli("stats", "--json", *scenarios[:2], env=env).returncode == 0
