"""sandbox solution ID: the reference fix as a diff, after a confirmation."""

from __future__ import annotations

import argparse

from ..errors import EXIT_FAIL, EXIT_PASS
from .common import add_scenarios, add_subcommand, confirm, history


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        commands, "solution",
        "Show the reference fix as a diff (marks your attempt as revealed).",
        "  sandbox solution exploding-lr-v2\n"
        "  sandbox solution exploding-lr-v2 --yes    # no prompt (scripts, teachers)")
    parser.add_argument("scenario", metavar="ID", help="scenario id (see `sandbox list`)")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_scenarios(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .. import drills
    from ..catalog import get
    from . import render

    scenario = get(args.scenario, args.scenarios)
    out = render.console()
    question = (f"This shows the reference fix for {scenario.id} and marks your attempt as "
                "revealed: a later pass will not count as a clean solve. Show it?")
    if not (args.yes or confirm(question)):
        out.print("Nothing shown; your attempt is unchanged.")
        return EXIT_FAIL
    attempt = drills.reveal(scenario, history())
    render.diff(drills.solution_diff(scenario), out)
    note = "marked as revealed" if attempt.revealed else "already solved, so nothing changes"
    out.print(f"\nYour attempt on {scenario.id}: {note}. The fixed files are in "
              f"{scenario.solution_dir}", highlight=False)
    return EXIT_PASS
