"""Shared fixtures. Scenario runs are expensive, so each scenario is checked (every
candidate it knows, on every seed) once per test session and shared by the tests."""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import settings

from sandbox import catalog
from sandbox.checker import CheckReport, check_scenario, margin_table

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FIXTURE_SCENARIOS = FIXTURES / "scenarios"
CATALOG = catalog.discover()

# The property tests (test_properties.py) draw 200 examples each. In CI they draw the same
# ones every run, so a red build is always reproducible; locally they draw new ones each
# time, and HYPOTHESIS_PROFILE=explore draws 5,000.
settings.register_profile("dev", max_examples=200)
settings.register_profile("ci", max_examples=200, derandomize=True, print_blob=True)
settings.register_profile("explore", max_examples=5000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI")
                                                                else "dev"))


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def checked(runs_dir: Path, tmp_path_factory: pytest.TempPathFactory, worker_id: str):
    """``checked(scenario_id)`` -> the CheckReport of really running the scenario: the
    shipped pipeline, the solution, every decoy and every alternative on every seed.
    Computed once per test session and shared by every test that needs it, on every
    xdist worker: ``--dist loadgroup`` keeps a scenario's tests together only mostly, so
    the first worker to ask checks it and the others read its report from the session's
    shared folder (a lock file makes them wait rather than check it again).
    """
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # each worker's basetemp sits in the session's folder
        shared = shared.parent
    folder = shared / "checked"
    folder.mkdir(exist_ok=True)
    cache: dict[str, CheckReport] = {}

    def get(scenario_id: str) -> CheckReport:
        if scenario_id not in cache:
            report = folder / f"{scenario_id}.pickle"
            with open(folder / f"{scenario_id}.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if report.exists():
                    cache[scenario_id] = pickle.loads(report.read_bytes())
                else:
                    scenario = catalog.get(scenario_id, [FIXTURE_SCENARIOS])
                    cache[scenario_id] = check_scenario(scenario.path, logdir=runs_dir,
                                                        device="cpu")
                    report.write_bytes(pickle.dumps(cache[scenario_id]))
                    _keep_margins(cache[scenario_id])
        return cache[scenario_id]

    return get


def _keep_margins(report: CheckReport) -> None:
    """With SANDBOX_MARGINS=folder, each checked scenario's margin table is written there
    (benchmarks/RESULTS.md quotes them from the suite's own runs)."""
    folder = os.environ.get("SANDBOX_MARGINS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{report.scenario}.md").write_text("\n".join(margin_table(report)))


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A copy of the fixture scenario, for tests that break it on purpose."""
    folder = tmp_path / "tiny-v1"
    shutil.copytree(FIXTURE_SCENARIOS / "tiny-v1", folder)
    return folder


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a child process. Its home (workspaces, history) is
    an empty folder unless ``env`` names one, so a developer's ./workspace never leaks in.
    """
    home = {"SANDBOX_HOME": os.path.join(tempfile.gettempdir(), f"no-home-{uuid.uuid4().hex}")}
    return subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", **home, **(env or {})})
