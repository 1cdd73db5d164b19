"""sandbox hint ID: the next hint; recorded, and it adds to the attempt's time."""

from __future__ import annotations

import argparse

from ..errors import EXIT_PASS
from ..history import HINT_PENALTY_S
from .common import add_scenarios, add_subcommand, history


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        commands, "hint",
        f"Show the next hint for a scenario (each adds {HINT_PENALTY_S // 60} minutes).",
        "  sandbox hint exploding-lr-v2     # hint 1; again for hint 2, then 3")
    parser.add_argument("scenario", metavar="ID", help="scenario id (see `sandbox list`)")
    add_scenarios(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..catalog import get
    from . import practice, render

    practice.show_hint(get(args.scenario, args.scenarios), history(), render.console())
    return EXIT_PASS
