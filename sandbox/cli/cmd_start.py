"""sandbox start ID: a workspace with the scenario's editable files, a ticket, the clock."""

from __future__ import annotations

import argparse

from ..errors import EXIT_PASS
from .common import add_execution, add_scenarios, add_subcommand, history


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        commands, "start", "Copy a scenario into your workspace and start the clock.",
        "  sandbox start exploding-lr-v2            # workspace/exploding-lr-v2/, TICKET.md\n"
        "  sandbox start exploding-lr-v2            # again: resumes, your edits are kept\n"
        "  sandbox start exploding-lr-v2 --reset    # fresh files; the old ones are backed up\n"
        "  SANDBOX_HOME=~/drills sandbox start data-leakage-v2")
    parser.add_argument("scenario", metavar="ID", help="scenario id (see `sandbox list`)")
    parser.add_argument("--reset", action="store_true",
                        help="back up the workspace, lay down fresh files, restart the clock")
    add_scenarios(parser)
    add_execution(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .. import drills
    from ..catalog import get
    from ..home import home_dir
    from ..runs import find_baseline
    from . import practice, render

    scenario = get(args.scenario, args.scenarios)
    out = render.console()
    log = history()
    started = drills.start(scenario, home_dir(), log, reset=args.reset)
    ws, attempt = started.workspace, started.attempt
    out.print(f"[bold]{scenario.title}[/] ({scenario.id}), difficulty "
              f"{render.STARS[scenario.difficulty]}\n{render.unfold(scenario.brief)}\n")
    if started.backup is not None:
        out.print(f"Your previous files were backed up to {started.backup}", highlight=False,
                  soft_wrap=True)
    out.print(f"Workspace: {ws.root}  (edit {', '.join(scenario.editable)}; the ticket is "
              "TICKET.md)", highlight=False, soft_wrap=True)
    if started.resumed:
        out.print(f"Resuming: your files are kept ({practice.edits(ws)}).", highlight=False)
        baseline = find_baseline(scenario, args.logdir)
        if baseline:
            practice.loss_chart(baseline[0], out)
        if attempt.status == "solved":
            out.print(f"{practice.solves(log.attempts(scenario.id))} `--reset` starts a fresh "
                      "timed attempt (your files are backed up first).")
            return EXIT_PASS
        out.print(f"Clock: {drills.clock(attempt.elapsed_s())} so far, {attempt.hints} hint(s).")
    else:
        practice.run_broken(scenario, args.device, args.logdir, out)
        log.start_clock(attempt.id)  # from now: the broken run was the tool's time
        out.print("\n[bold]The clock is running.[/]")
    out.print(f"Next: edit the files, then `sandbox verify {scenario.id}` (or `sandbox watch "
              f"{scenario.id}` to verify on every save). Stuck? `sandbox hint {scenario.id}`.")
    return EXIT_PASS
