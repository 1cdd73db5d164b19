"""sandbox list: the catalog and where you stand on each scenario (never imports torch)."""

from __future__ import annotations

import argparse
import json

from .common import add_scenarios, add_subcommand, recorded_attempts


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(commands, "list", "List the scenarios, with your progress on each.",
                            "  sandbox list\n  sandbox list --json\n"
                            "  sandbox list --scenarios ./my-scenarios")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON array of {id, title, difficulty, tags, status, "
                             "best_time_s, ...}")
    add_scenarios(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..catalog import discover
    from ..drills import progress

    scenarios = list(discover(args.scenarios).values())
    attempts, unread = recorded_attempts()
    states = progress(scenarios, attempts)
    if args.json:
        print(json.dumps([{**s.summary(), "status": states[s.id].status,
                           "best_time_s": states[s.id].best_s} for s in scenarios], indent=2))
        return 0
    from . import render

    if unread:
        render.console(stderr=True).print(f"[yellow]warning:[/] progress not shown: "
                                          f"{render.safe(unread)}", highlight=False)
    render.scenario_table(scenarios, states)
    return 0
