"""sandbox reset: fresh files for one workspace, or start over with everything set aside."""

from __future__ import annotations

import argparse

from ..errors import EXIT_FAIL, EXIT_PASS, ConfigError
from .common import add_scenarios, add_subcommand, confirm, history


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        commands, "reset", "Back up a workspace and lay down fresh files, or (--all) start "
        "over with every workspace and your history moved to a backup.",
        "  sandbox reset exploding-lr-v2     # its files backed up, fresh ones laid down\n"
        "  sandbox reset --all               # everything moved to .backups/reset-<time>/\n"
        "  sandbox reset --all --yes         # no prompt")
    parser.add_argument("scenario", metavar="ID", nargs="?", help="the scenario to reset")
    parser.add_argument("--all", action="store_true",
                        help="every workspace and the history, moved aside first")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_scenarios(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.all == (args.scenario is not None):
        raise ConfigError("give a scenario ID or --all (not both): `sandbox reset ID` or "
                          "`sandbox reset --all`.")
    return reset_all(args) if args.all else reset_one(args)


def reset_one(args: argparse.Namespace) -> int:
    """Like ``start --reset`` without the run: the attempt in progress is abandoned and
    the next ``start`` opens a fresh one.
    """
    from ..catalog import get
    from ..home import Workspace, home_dir
    from . import render

    scenario = get(args.scenario, args.scenarios)
    ws = Workspace(scenario, home_dir())
    if not ws.exists():
        raise ConfigError(f"{ws.root} does not exist: nothing to reset. `sandbox start "
                          f"{scenario.id}` makes it.")
    log = history()
    saved = ws.reset()
    latest = log.latest(scenario.id)
    if latest is not None and latest.status == "open":
        log.close_attempt(latest.id, "abandoned")
    out = render.console()
    out.print(f"{ws.root} has fresh files; yours were backed up to {saved}." if saved else
              f"{ws.root} has fresh files.", highlight=False, soft_wrap=True)
    out.print(f"`sandbox start {scenario.id}` starts a new timed attempt.")
    return EXIT_PASS


def reset_all(args: argparse.Namespace) -> int:
    from ..catalog import discover
    from ..home import check_home, home_dir, set_aside
    from . import render

    home = check_home(home_dir())
    out = render.console()
    question = (f"This moves every workspace in {home} and your history (times, hints, quiz "
                f"answers) into {home / '.backups'}/reset-<time>/, so you start over. "
                "Nothing is deleted. Go ahead?")
    if not (args.yes or confirm(question)):
        out.print("Nothing changed.")
        return EXIT_FAIL
    history().close()
    target, moved = set_aside(home, list(discover(args.scenarios)))
    out.print(f"Moved {len(moved)} item(s) to {target}: {', '.join(moved)}.", highlight=False,
              soft_wrap=True)
    out.print(f"To undo: move them back into {home} (`mv {target}/* {target}/.[!.]* "
              f"{home}/` with nothing running). `sandbox next` starts afresh.", highlight=False,
              soft_wrap=True)
    return EXIT_PASS
