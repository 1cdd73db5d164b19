"""Entry point: builds the parser from the subcommand modules and maps errors to exit codes.

Exit codes: 0 pass, 1 fail, 2 bad input, 3 internal error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

from ..errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, SandboxError, Stopped
from . import (
    cmd_check,
    cmd_demo,
    cmd_diagnose,
    cmd_drill,
    cmd_hint,
    cmd_list,
    cmd_next,
    cmd_quiz,
    cmd_reset,
    cmd_run,
    cmd_show,
    cmd_solution,
    cmd_start,
    cmd_stats,
    cmd_tb,
    cmd_verify,
    cmd_watch,
)

COMMANDS = (cmd_list, cmd_show, cmd_next, cmd_run, cmd_verify, cmd_start, cmd_hint, cmd_watch,
            cmd_reset, cmd_solution, cmd_drill, cmd_quiz, cmd_stats, cmd_diagnose, cmd_demo,
            cmd_check, cmd_tb)
EXIT_INTERNAL = 3
# What the operating system says when the user's disk or folders refuse a write.
FILESYSTEM_REFUSALS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                       errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR, errno.EISDIR}
BAD_PATHS = {errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR, errno.EISDIR}


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, as every other refusal is; ``--help`` has the rest."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT,
                  f"{self.prog}: {printable(message, lines=False)} (see `{self.prog} --help`)\n")


def printable(text: str, lines: bool = True) -> str:
    """Messages quote what the user typed; a control character in it is shown escaped,
    never sent to the terminal (where it could move the cursor or split the line). With
    ``lines``, a message's own list of problems stays on its indented lines: only a
    newline followed by the two-space indent is kept.
    """
    shown = []
    for i, c in enumerate(text):
        keep = c.isprintable() or (lines and c == "\n" and text[i + 1:i + 3] == "  ")
        shown.append(c if keep else repr(c)[1:-1])
    return "".join(shown)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signum)


def _stop_on_terminate() -> dict[int, object]:
    """SIGTERM and SIGHUP stop a command as Ctrl-C does; returns what to restore (the
    handlers belong to the process, and tests call ``main`` in theirs).
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _raise_stopped) for sig in (signal.SIGTERM, signal.SIGHUP)}


def main(argv: Sequence[str] | None = None) -> int:
    _hear_ctrl_c()
    parser = build_parser()
    if argv is not None and any("\x00" in arg for arg in argv):  # the OS never passes one
        parser.error("an argument holds a NUL byte (\\x00), which no name or value can")
    args = parser.parse_args(argv)
    previous = _stop_on_terminate()
    try:
        return int(args.handler(args))
    except SandboxError as error:
        print(f"sandbox {args.command}: {printable(str(error))}", file=sys.stderr)
        return error.exit_code
    except Stopped as stop:
        name = signal.Signals(stop.signum).name
        print(f"sandbox {args.command}: stopped by {name}; runs in progress were stopped.",
              file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print("\ninterrupted; runs in progress were stopped.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `sandbox list | head`: the reader has all it wanted
        _quiet_stdout()
        return 128 + signal.SIGPIPE
    except OSError as error:
        if error.errno not in FILESYSTEM_REFUSALS or os.environ.get("SANDBOX_DEBUG"):
            return _internal(args.command, error)
        print(f"sandbox {args.command}: {_refusal(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:
        return _internal(args.command, error)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's own flush at exit does not fail on
    the closed pipe again (and print a traceback of its own).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _refusal(error: OSError) -> str:
    """A full disk or a folder the user cannot write is theirs to fix: name the path."""
    name = str(error.filename)
    where = f" {name if len(name) <= 200 else name[:197] + '...'}" if error.filename else " a file"
    advice = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some of your quota"}.get(
        error.errno, "check the path" if error.errno in BAD_PATHS else
        "check its permissions, or choose a folder you can write (--logdir, SANDBOX_HOME)")
    verb = "write" if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) else "use"
    return f"cannot {verb}{where}: {error.strerror}; {advice} and run it again."


def _internal(command: str, error: Exception) -> int:
    """A harness bug: say so in one line unless debugging."""
    if os.environ.get("SANDBOX_DEBUG"):
        raise error
    print(f"sandbox {command}: internal error: {type(error).__name__}: {error}\n"
          "This is a bug in the sandbox, not in your pipeline; SANDBOX_DEBUG=1 shows "
          "the traceback.", file=sys.stderr)
    return EXIT_INTERNAL


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
