"""Run every benchmark and write benchmarks/RESULTS.md (quoted in the README)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import bench_cli
import bench_diagnosis
import bench_integrity
import bench_margins
import bench_practice
import bench_telemetry
import torch


def main() -> None:
    header = [f"# Benchmark results ({time.strftime('%Y-%m-%d')})", "",
              f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
              f"Python {platform.python_version()}, torch {torch.__version__}.", "",
              "## CLI wall time (median; verify runs 3 seeds in parallel processes)", ""]
    cli = bench_cli.main()
    tele = ["", "## Telemetry overhead (same loop with and without the harness's logging; "
            "CPU time, one process, one thread, 30 pairs)", ""]
    tele += bench_telemetry.main()
    integrity = ["", "## Verdict-integrity checks: their cost on verify", ""]
    integrity += bench_integrity.main()
    margin = ["", "## Verdict margins: every fix `sandbox check` runs, per seed", ""]
    margin += bench_margins.main()
    diag = ["", "## Diagnoser: precision and recall; probe overhead", ""]
    diag += bench_diagnosis.main()
    practice = ["", "## Practice commands and the history database (whole processes; "
                "writes in-process, 300 each)", ""]
    practice += bench_practice.main()
    out = Path(__file__).with_name("RESULTS.md")
    out.write_text("\n".join(header + cli + tele + integrity + margin + diag + practice) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
