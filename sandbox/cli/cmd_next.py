"""sandbox next: start the scenario you should do next (like rustlings' next exercise)."""

from __future__ import annotations

import argparse

from ..errors import EXIT_PASS
from .common import add_execution, add_scenarios, add_subcommand, history


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        commands, "next", "Start (or resume) the easiest scenario you have not solved.",
        "  sandbox next            # resumes one you started, else the easiest new one\n"
        "  sandbox list            # where you stand on each")
    add_scenarios(parser)
    add_execution(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..catalog import discover
    from ..drills import counted, next_unsolved
    from . import cmd_start, render

    scenarios = list(discover(args.scenarios).values())
    chosen = next_unsolved(scenarios, history().attempts())
    if chosen is None:
        render.console().print(f"You have solved all {len(counted(scenarios))} scenarios. "
                               "`sandbox drill` replays them against the clock; `sandbox "
                               "stats` has your times.")
        return EXIT_PASS
    render.console().print(f"Next: {chosen.id}", highlight=False)
    args.scenario, args.reset = chosen.id, False
    return cmd_start.run(args)
