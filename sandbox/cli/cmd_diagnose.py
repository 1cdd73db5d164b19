"""sandbox diagnose PATH: name the symptoms in any TensorBoard log directory."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TextIO

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

    progress = Progress(sys.stderr)
    try:
        runs = diagnose(args.path, on_run=progress)
    finally:
        progress.done()
    if args.json:
        print(json.dumps({"runs": [r.to_json() for r in runs]}, indent=2))
    else:
        from . import render
        render.diagnosis(runs, args.path)
    return EXIT_PASS


class Progress:
    """'diagnosing run 3 of 40: name' on stderr, once a folder has taken over a second (a
    small one stays quiet). On a terminal the line is rewritten in place; in a log, a line
    is written at each tenth of the runs.
    """

    AFTER_S = 1.0

    def __init__(self, stream: TextIO):
        self.stream, self.started, self.shown = stream, time.monotonic(), False
        self.tty = stream.isatty()

    def __call__(self, index: int, total: int, name: str) -> None:
        if time.monotonic() - self.started < self.AFTER_S:
            return
        if not self.tty and self.shown and index % max(1, total // 10):
            return
        from .render import CONTROL  # a folder name must not drive the terminal
        line = f"diagnosing run {index + 1} of {total}: {CONTROL.sub('?', name)[:120]}"
        self.stream.write(f"\r\033[K{line}" if self.tty else line + "\n")
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown and self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()

