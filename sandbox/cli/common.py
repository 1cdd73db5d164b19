"""Options several subcommands share, declared once."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

SEED_LIMIT = 2 ** 32  # numpy's and torch's seeds: 0 to 2**32 - 1


def seed(text: str) -> int:
    """An argparse type: a seed NumPy and torch both take, refused before anything runs."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{value} is outside 0 to {SEED_LIMIT - 1}")
    return value


def minutes(text: str) -> float:
    """An argparse type: a finite, positive time (nan and inf are floats argparse takes)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive, finite number of minutes")
    return value


def default_logdir() -> Path:
    return Path(os.environ.get("SANDBOX_LOGDIR") or "runs")  # empty counts as unset


def add_subcommand(commands: argparse._SubParsersAction, name: str, summary: str,
                   examples: str) -> argparse.ArgumentParser:
    """A subparser whose --help ends with real examples."""
    return commands.add_parser(name, help=summary, description=summary,
                               epilog="examples:\n" + examples,
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def add_scenarios(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenarios", metavar="DIR", type=Path, action="append", default=[],
                        help="also load scenarios from DIR (repeatable)")


def add_filters(parser: argparse.ArgumentParser) -> None:
    """Which scenarios a drill or a quiz may pick."""
    parser.add_argument("--difficulty", type=int, choices=(1, 2, 3), metavar="D",
                        help="only scenarios of difficulty D (1-3)")
    parser.add_argument("--tag", metavar="T", help="only scenarios with tag T")


def add_execution(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to train (default: auto, CUDA when available)")
    parser.add_argument("--logdir", metavar="DIR", type=Path, default=default_logdir(),
                        help="where TensorBoard logs and PNGs go (default: ./runs, "
                             "or $SANDBOX_LOGDIR)")


def add_candidate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="ID", help="scenario id (see `sandbox list`)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--solution", action="store_true", help="run the reference solution")
    which.add_argument("--config", metavar="FILE", type=Path,
                       help="a patched config.yaml (whole, or only the keys it changes)")
    which.add_argument("--pipeline", metavar="FILE", type=Path,
                       help="your own pipeline.py, run with the shipped config")
    parser.add_argument("--set", metavar="KEY=VALUE", dest="overrides", action="append",
                        default=[], help="override one config key, e.g. optimizer.lr=0.01 "
                                         "(repeatable)")
    add_scenarios(parser)
    add_execution(parser)


def make_candidate(args: argparse.Namespace, scenario=None):
    """The scenario (looked up unless given) and the validated candidate the arguments
    describe.
    """
    from ..catalog import get
    from ..harness import candidate

    scenario = scenario or get(args.scenario, args.scenarios)
    chosen = candidate.make(scenario, solution=args.solution, config_file=args.config,
                            pipeline_file=args.pipeline, overrides=args.overrides)
    return scenario, chosen


def history():
    """The history database in the home folder (``./workspace`` or ``$SANDBOX_HOME``).

    The home is checked first, so that one that is a file or cannot be written is bad
    input naming it, not an empty history ("nothing recorded yet") or a crash later.
    """
    from ..history import History
    from ..home import check_home, home_dir
    return History.in_home(check_home(home_dir()))


def recorded_attempts() -> tuple[list, str | None]:
    """The attempts in the history, for commands that only show progress (``list``): an
    empty list when there is no history yet (nothing is created), and a warning instead
    of a refusal when it cannot be read, since the catalog is worth showing anyway.
    """
    from ..errors import SandboxError
    from ..history import DB_NAME, History
    from ..home import home_dir
    path = home_dir() / DB_NAME
    if not path.is_file():
        return [], None
    try:
        return History(path).attempts(), None
    except SandboxError as error:
        return [], str(error)


def confirm(question: str) -> bool:
    """A yes/no question on the terminal; a closed stdin is a clear error, not a hang."""
    from ..errors import SandboxError
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        raise SandboxError("no answer: stdin is closed. Pass --yes to confirm without a "
                           "prompt.") from None
    return answer.strip().lower() in ("y", "yes")
