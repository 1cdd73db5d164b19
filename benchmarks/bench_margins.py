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
from sandbox.checker import check_scenario, margins
from sandbox.criteria import REVEALING
from sandbox.verification import use_fixed_salt

DECIDING = ("train loss", "test accuracy", "honest validation", "budget", "capacity",
            *sorted(REVEALING))


def main() -> list[str]:
    use_fixed_salt("benchmarks")
    lines = []
    with tempfile.TemporaryDirectory() as logs:
        for scenario in catalog.discover().values():
            if scenario.path.parent.name != "scenarios":
                continue
            report = check_scenario(scenario.path, logdir=Path(logs), device="cpu")
            lines += [f"### {scenario.id}" + ("" if report.ok else " (check found problems)"),
                      "", "| fix | verdict | deciding criteria (seed by seed) |",
                      "| --- | --- | --- |"]
            for row in margins(report):
                cells = row["criteria"]
                shown = [n for n in DECIDING if n in cells and
                         (not cells[n]["passed"] if not row["passed"] else True)]
                text = "; ".join(f"{n}: {cells[n]['measured']}" for n in shown)
                lines.append(f"| {row['kind']} {row['name']} | "
                             f"{'pass' if row['passed'] else 'fail'} | {text} |")
            lines.append("")
            print(f"{scenario.id}: {len(report.problems)} problem(s)", flush=True)
    use_fixed_salt(None)
    return lines


if __name__ == "__main__":
    print("\n".join(main()))
