"""Entry point: builds the parser from the subcommand modules and maps errors to exit codes.

Exit codes: 0 pass, 1 fail, 2 bad input, 3 internal error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from ..errors import EXIT_INTERRUPTED, SandboxError
from . import (
    cmd_check,
    cmd_demo,
    cmd_diagnose,
    cmd_drill,
    cmd_hint,
    cmd_list,
    cmd_quiz,
    cmd_run,
    cmd_show,
    cmd_solution,
    cmd_start,
    cmd_stats,
    cmd_verify,
    cmd_watch,
)

COMMANDS = (cmd_list, cmd_show, cmd_run, cmd_verify, cmd_start, cmd_hint, cmd_watch,
            cmd_solution, cmd_drill, cmd_quiz, cmd_stats, cmd_diagnose, cmd_demo, cmd_check)
EXIT_INTERNAL = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sandbox",
        description="Broken PyTorch training pipelines to diagnose and fix.",
        epilog="Start with `sandbox demo`, then `sandbox list`. Exit codes: 0 pass, "
               "1 fail, 2 bad input.")
    parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parser(commands)
    return parser


def _hear_ctrl_c() -> None:
    """Ctrl-C must reach a command that promises to stop on it (exit 130): SIGINT (and SIGTERM)
    blocked or SIGINT ignored by whatever started the process (a parent's mask is inherited across
    exec, as is an ignored disposition) is unblocked, and, with a terminal on stdin, handled
    again. A background job without a terminal keeps the SIGINT its shell ignored.
    """
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN and sys.stdin is not None \
            and sys.stdin.isatty():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: Sequence[str] | None = None) -> int:
    _hear_ctrl_c()
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except SandboxError as error:
        print(f"sandbox {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted; runs in progress were stopped.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # a harness bug: say so in one line unless debugging
        if os.environ.get("SANDBOX_DEBUG"):
            raise
        print(f"sandbox {args.command}: internal error: {type(error).__name__}: {error}\n"
              "This is a bug in the sandbox, not in your pipeline; SANDBOX_DEBUG=1 shows "
              "the traceback.", file=sys.stderr)
        return EXIT_INTERNAL


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
