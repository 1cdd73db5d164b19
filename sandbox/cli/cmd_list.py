"""sandbox list: the catalog (never imports torch)."""

from __future__ import annotations

import argparse
import json

from .common import add_scenarios, add_subcommand


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(commands, "list", "List the scenarios.",
                            "  sandbox list\n  sandbox list --json\n"
                            "  sandbox list --scenarios ./my-scenarios")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON array of {id, title, difficulty, tags, ...}")
    add_scenarios(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..catalog import discover

    scenarios = list(discover(args.scenarios).values())
    if args.json:
        print(json.dumps([s.summary() for s in scenarios], indent=2))
        return 0
    from .render import scenario_table

    scenario_table(scenarios)
    return 0
