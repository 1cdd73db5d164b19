"""sandbox check DIR: for scenario authors, is the folder a fair challenge?"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import EXIT_FAIL, EXIT_PASS
from .common import add_execution, add_subcommand


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        commands, "check",
        "Check a scenario folder: metadata, a focused fix, and by running them that the "
        "shipped pipeline and every decoy fail and the solution and every alternative pass "
        "on every seed.",
        "  sandbox check scenarios/exploding-lr-v2\n"
        "  sandbox check ./my-scenario --write-reference   # after changing the scenario\n"
        "  sandbox check ./my-scenario --json")
    parser.add_argument("folder", metavar="DIR", type=Path)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--write-reference", action="store_true",
                        help="write reference.json from these runs (the shipped model's size, "
                             "the solution's budget and scores) instead of checking it")
    add_execution(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..catalog import load_scenario
    from ..checker import check_scenario, margins
    from . import render

    scenario = load_scenario(args.folder)
    with render.progress(scenario.criteria.max_steps, to_stderr=True) as on_event:
        report = check_scenario(args.folder, logdir=args.logdir, device=args.device,
                                on_event=on_event, write_reference=args.write_reference)
    if args.json:
        print(json.dumps({"scenario": report.scenario, "ok": report.ok,
                          "problems": report.problems, "margins": margins(report)}, indent=2))
        return EXIT_PASS if report.ok else EXIT_FAIL
    out = render.console()
    if report.broken is not None:
        render.margins(margins(report), out)
    if report.ok:
        out.print(f"[green]{report.scenario} is a fair challenge[/]: the shipped pipeline "
                  "and every decoy fail on every seed, the solution and every alternative "
                  "pass on every seed, and every documented symptom shows in the broken "
                  "run's telemetry.")
    else:
        out.print(f"[red]{report.scenario} has {len(report.problems)} problem(s):[/]")
        for problem in report.problems:
            out.print(f"  - {problem}")
    return EXIT_PASS if report.ok else EXIT_FAIL
