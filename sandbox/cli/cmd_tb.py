"""sandbox tb ID: TensorBoard over one scenario's runs, the broken run and the latest
attempt named.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import interrupted
from .common import add_scenarios, add_subcommand, default_logdir


def port(text: str) -> int:
    """An argparse type: a TCP port to listen on."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is outside 1 to 65535")
    return value


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        commands, "tb", "Open TensorBoard on 127.0.0.1 over a scenario's runs: every "
        "attempt, named by its number and what it changed, next to the broken run.",
        "  sandbox tb exploding-lr-v2               # all its runs; prints the URL\n"
        "  sandbox tb exploding-lr-v2 --compare     # only the broken run and your latest\n"
        "  sandbox tb exploding-lr-v2 --port 6006   # Ctrl-C stops TensorBoard")
    parser.add_argument("scenario", metavar="ID", help="scenario id (see `sandbox list`)")
    parser.add_argument("--compare", action="store_true",
                        help="show only the broken run and the latest attempt, named "
                             "'broken' and 'latest' in TensorBoard")
    parser.add_argument("--port", type=port, metavar="N",
                        help="port to listen on (default: a free one)")
    parser.add_argument("--logdir", metavar="DIR", type=Path, default=default_logdir(),
                        help="where the runs were logged (default: ./runs, or $SANDBOX_LOGDIR)")
    add_scenarios(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..board import BoardFailed, board, running
    from ..catalog import get
    from . import render

    scenario = get(args.scenario, args.scenarios)
    shown = board(scenario, args.logdir)
    out = render.console()
    try:
        with running(shown, port=args.port, compare=args.compare) as server:
            out.print(f"TensorBoard for {scenario.id}: {server.url}", soft_wrap=True)
            if args.compare:
                out.print("  showing two runs, named in TensorBoard's run list:")
                rows = [("broken", shown.broken), ("latest", shown.latest)]
            else:
                out.print(f"  showing {len(shown.runs)} run(s) in {render.safe(shown.folder)}",
                          soft_wrap=True)
                rows = [("broken run", shown.broken), ("latest attempt", shown.latest)]
            for name, chosen in rows:
                out.print(f"  {name + ':':<16}"
                          f"{render.safe(chosen.name) if chosen else '(none yet)'}", soft_wrap=True)
            out.print("  loss/train_log10 is the loss on a log scale, so a diverged run stays "
                      "on the chart; untick 'Ignore outliers in chart scaling' in the "
                      "settings to see all of it. Ctrl-C stops TensorBoard.")
            sys.stdout.flush()
            code = server.wait()
    except KeyboardInterrupt as stop:
        out.print("\nTensorBoard stopped.")
        return interrupted(stop)
    raise BoardFailed(f"TensorBoard exited on its own (code {code}): {server.said()}")
