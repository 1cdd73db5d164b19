"""sandbox diagnose PATH: name the symptoms in any TensorBoard log directory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import EXIT_PASS
from .common import add_subcommand


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        commands, "diagnose", "Read the loss curves of every run under PATH and name "
        "their symptoms, with evidence, likely causes and fixes.",
        "  sandbox diagnose runs/exploding-lr-v2\n"
        "  sandbox diagnose ~/experiments/lightning_logs --json\n"
        "  sandbox diagnose runs/my-run/events.out.tfevents.1700000000.host")
    parser.add_argument("path", metavar="PATH", type=Path,
                        help="a TensorBoard log folder (searched recursively) or event file")
    parser.add_argument("--json", action="store_true",
                        help='print {"runs": [{"run", "findings": [{"symptom", "step", '
                             '"evidence"}], "notes"}]}')
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 whenever the logs could be read, findings or not; 2 when there are none."""
    from ..diagnosis import diagnose

    runs = diagnose(args.path)
    if args.json:
        print(json.dumps({"runs": [r.to_json() for r in runs]}, indent=2))
    else:
        from . import render
        render.diagnosis(runs, args.path)
    return EXIT_PASS
