"""sandbox watch ID: verify the workspace again on every save, like rustlings' watch."""

from __future__ import annotations

import argparse

from ..errors import EXIT_FAIL, EXIT_PASS, interrupted
from .common import add_execution, add_scenarios, add_subcommand, history


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        commands, "watch", "Verify your workspace every time you save a file in it.",
        "  sandbox watch exploding-lr-v2     # Enter: verify now, h: hint, q or Ctrl-C: stop")
    parser.add_argument("scenario", metavar="ID", help="scenario id (see `sandbox list`)")
    add_scenarios(parser)
    add_execution(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..catalog import get
    from ..home import Workspace, home_dir
    from . import practice, render

    scenario = get(args.scenario, args.scenarios)
    ws = Workspace(scenario, home_dir())
    ws.candidate()  # no workspace, or a deleted file: say so before watching nothing
    out = render.console()
    try:
        ended = practice.watch(scenario, ws, history(), device=args.device,
                               logdir=args.logdir, out=out)
    except KeyboardInterrupt as stop:
        out.print("\nStopped watching; runs in progress were stopped and your files are "
                  "as you left them.")
        return interrupted(stop)
    if ended == "quit":
        out.print("Stopped watching; your files are as you left them.")
    return EXIT_PASS if ended == "solved" else EXIT_FAIL
