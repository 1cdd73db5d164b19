"""Shared fixtures. Scenario runs are expensive, so each (scenario, candidate) pair is
verified once per test session and the result shared by every test that needs it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from sandbox import catalog
from sandbox.harness import candidate
from sandbox.verification import Verification, verify

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE_SCENARIOS = FIXTURES / "scenarios"
CATALOG = catalog.discover()


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def verified(runs_dir: Path):
    """``verified(scenario_id, solution)`` -> Verification, computed once per session."""
    cache: dict[tuple[str, bool], Verification] = {}

    def get(scenario_id: str, solution: bool) -> Verification:
        key = (scenario_id, solution)
        if key not in cache:
            scenario = catalog.get(scenario_id, [FIXTURE_SCENARIOS])
            chosen = candidate.make(scenario, solution=solution)
            cache[key] = verify(scenario, chosen, device="cpu", logdir=runs_dir)
        return cache[key]

    return get


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a child process. Its home (workspaces, history) is
    an empty folder unless ``env`` names one, so a developer's ./workspace never leaks in.
    """
    home = {"SANDBOX_HOME": os.path.join(tempfile.gettempdir(), f"no-home-{uuid.uuid4().hex}")}
    return subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", **home, **(env or {})})
