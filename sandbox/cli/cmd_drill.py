"""sandbox drill: several scenarios one after another under one clock, then a summary."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from ..errors import EXIT_FAIL, EXIT_PASS, ConfigError, interrupted
from .common import (
    add_execution,
    add_filters,
    add_scenarios,
    add_subcommand,
    history,
    minutes,
)

if TYPE_CHECKING:
    from rich.console import Console

    from ..catalog import Scenario
    from ..history import Attempt, History


def add_parser(commands: argparse._SubParsersAction) -> None:
    from ..drills import DRILL, INTERVIEW

    parser = add_subcommand(
        commands, "drill", "Timed drill: fix scenarios one after another against the clock.",
        f"  sandbox drill                      # {DRILL['count']} scenarios, "
        f"{DRILL['minutes']:g} minutes, unsolved first\n"
        "  sandbox drill --count 1 --minutes 10 --difficulty 1\n"
        "  sandbox drill --tag evaluation\n"
        f"  sandbox drill --interview          # mock interview: {INTERVIEW['count']} "
        f"scenarios, {INTERVIEW['minutes']:g} minutes, no automatic diagnosis")
    parser.add_argument("--count", type=int, metavar="N", help="how many scenarios")
    parser.add_argument("--minutes", type=minutes, metavar="M", help="the time for all of them")
    add_filters(parser)
    parser.add_argument("--interview", action="store_true",
                        help="mock-interview preset: the curves without the diagnoser's "
                             "findings, as an interviewer would show them")
    add_scenarios(parser)
    add_execution(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .. import drills
    from ..catalog import discover
    from ..home import home_dir
    from . import practice, render

    preset = "interview" if args.interview else "drill"
    defaults = drills.INTERVIEW if args.interview else drills.DRILL
    count = args.count if args.count is not None else int(defaults["count"])
    minutes = args.minutes if args.minutes is not None else defaults["minutes"]
    if minutes <= 0:
        raise ConfigError(f"--minutes {minutes:g}: give the drill some time.")
    log = history()
    picked = drills.pick(list(discover(args.scenarios).values()), log, count=count,
                         difficulty=args.difficulty, tag=args.tag)
    out = render.console()
    drill_id = log.start_drill(preset, len(picked), minutes)
    deadline = time.time() + minutes * 60
    out.print(f"[bold]{'Mock interview' if args.interview else 'Drill'}[/]: {len(picked)} "
              f"scenario(s), {minutes:g} minutes on one clock. Each is revealed in turn; "
              "fix it in its workspace folder and it is verified on every save.")
    ended: list[tuple[str, Attempt]] = []
    current = None
    try:
        for n, scenario in enumerate(picked, 1):
            left = deadline - time.time()
            if left <= 0:
                break
            current = started = drills.start(scenario, home_dir(), log, reset=True,
                                             mode=preset, drill_id=drill_id)
            out.rule(f"{n} of {len(picked)}: {scenario.id} ({drills.clock(left)} left)")
            out.print(f"[bold]{scenario.title}[/]\n{render.unfold(scenario.brief)}\n")
            if started.backup is not None:
                out.print(f"(Your earlier files for it were backed up to {started.backup})",
                          highlight=False, soft_wrap=True)
            out.print(f"Workspace: {started.workspace.root} (edit "
                      f"{', '.join(scenario.editable)}; TICKET.md there has the rules)",
                      highlight=False, soft_wrap=True)
            shown_at = time.time()  # the tool's own run is not on the candidate's clock
            practice.run_broken(scenario, args.device, args.logdir, out,
                                diagnosis=not args.interview)
            deadline += time.time() - shown_at
            log.start_clock(started.attempt.id)
            result = practice.watch(scenario, started.workspace, log, device=args.device,
                                    logdir=args.logdir, out=out, deadline=deadline,
                                    can_skip=True, findings=not args.interview)
            ended.append((scenario.id, _close(log, started.attempt.id, result)))
            current = None
            if result in ("quit", "time-up"):
                out.print("Time is up." if result == "time-up" else "Drill stopped.")
                break
    except KeyboardInterrupt as stop:
        if current is not None:
            ended.append((current.workspace.scenario.id,
                          log.close_attempt(current.attempt.id, "abandoned")))
        out.print("\nDrill interrupted; runs in progress were stopped.")
        _finish(log, drill_id, picked, ended, out)
        return interrupted(stop)
    return EXIT_PASS if _finish(log, drill_id, picked, ended, out) == "all" else EXIT_FAIL


def _close(log: History, attempt_id: int, result: str) -> Attempt:
    status = {"skipped": "skipped", "time-up": "timed-out", "quit": "abandoned"}.get(result)
    return log.close_attempt(attempt_id, status) if status else log.attempt(attempt_id)


def _finish(log: History, drill_id: int, picked: list[Scenario],
            ended: list[tuple[str, Attempt]], out: Console) -> str:
    """Close the drill and print the summary; returns 'all' when every scenario was solved."""
    from rich.table import Table

    from ..drills import clock
    from .practice import solve_time

    log.finish_drill(drill_id)
    table = Table(title="Drill summary", title_justify="left")
    for column in ("scenario", "result", "time", "hints"):
        table.add_column(column)
    done = dict(ended)
    for scenario in picked:
        attempt = done.get(scenario.id)
        if attempt is None:
            table.add_row(scenario.id, "not reached", "-", "-")
            continue
        result = "solved" if attempt.status == "solved" else attempt.status
        time_text = solve_time(attempt) if attempt.status == "solved" else \
            clock(attempt.elapsed_s())
        table.add_row(scenario.id, result, time_text, str(attempt.hints))
    out.print(table)
    solved = sum(a.status == "solved" for a in done.values())
    out.print(f"Solved {solved} of {len(picked)}. `sandbox stats` shows your history; "
              "unsolved workspaces stay where they are for later.")
    return "all" if solved == len(picked) else "some"
