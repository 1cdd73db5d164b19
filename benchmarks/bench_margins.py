"""Verdict margins: for every scenario, every fix ``sandbox check`` runs (shipped,
reference, alternatives, decoys) with the criteria that decide it, on every seed (seed order).

A fix that passes shows its test metric and its root-cause criteria (how far inside the
bar it is); a fix that fails shows what it failed. Hidden samples are drawn with a fixed
salt here so that the table is reproducible.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sandbox import catalog
from sandbox.checker import check_scenario, margin_table
from sandbox.verification import use_fixed_salt


def main() -> list[str]:
    use_fixed_salt("benchmarks")
    lines = []
    with tempfile.TemporaryDirectory() as logs:
        for scenario in catalog.discover().values():
            if scenario.path.parent.name != "scenarios":
                continue
            report = check_scenario(scenario.path, logdir=Path(logs), device="cpu")
            lines += margin_table(report)
            print(f"{scenario.id}: {len(report.problems)} problem(s)", flush=True)
    use_fixed_salt(None)
    return lines


if __name__ == "__main__":
    print("\n".join(main()))
