"""Wall time of whole CLI commands, as a user sees them: `sandbox list`, and `sandbox
verify ID` / `sandbox verify ID --solution` for every scenario (3 seeds each)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time


def wall(args: list[str], repeats: int) -> tuple[float, int]:
    times, code = [], 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as logdir:
            extra = ["--logdir", logdir] if args[0] == "verify" else []
            started = time.perf_counter()
            code = subprocess.run([sys.executable, "-m", "sandbox", *args, *extra],
                                  capture_output=True).returncode
            times.append(time.perf_counter() - started)
    return statistics.median(times), code


def main(repeats: int = 3, flags: tuple[tuple[str, ...], ...] = ((), ("--solution",))
         ) -> list[str]:
    lines = ["| command | median wall s | exit |", "| --- | --- | --- |"]
    t, code = wall(["list"], 15)
    lines.append(f"| sandbox list | {t:.3f} | {code} |")
    print(lines[-1], flush=True)
    ids = [e["id"] for e in json.loads(subprocess.run(
        [sys.executable, "-m", "sandbox", "list", "--json"], capture_output=True,
        text=True).stdout)]
    for scenario_id in ids:
        for flag in map(list, flags):
            t, code = wall(["verify", scenario_id, *flag, "--device", "cpu"], repeats)
            lines.append(f"| sandbox verify {' '.join([scenario_id, *flag])} | {t:.2f} | {code} |")
            print(lines[-1], flush=True)
    return lines


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
