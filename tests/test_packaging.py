"""A non-editable install finds the bundled scenarios and data from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytest.importorskip("hatchling")


def test_wheel_bundles_scenarios_and_datasets(tmp_path: Path):
    wheel_dir, target = tmp_path / "wheel", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheel_dir), str(ROOT)], check=True, timeout=300)
    [wheel] = wheel_dir.glob("*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    code = ("import sandbox.catalog as c, sandbox.data as d; "
            "print(sorted(c.discover())); print(c.bundled_dir()); print(d.datasets_dir())")
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=env, check=True, timeout=120).stdout.splitlines()
    shipped = sorted(p.parent.name for p in (ROOT / "scenarios").glob("*/scenario.yaml"))
    assert out[0] == str(shipped)
    assert out[1].startswith(str(target)) and out[2].startswith(str(target))
    assert (Path(out[2]) / "digits.npz").is_file()
