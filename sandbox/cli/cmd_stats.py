"""sandbox stats: your practice history, per scenario and in total."""

from __future__ import annotations

import argparse
import json

from ..errors import EXIT_PASS
from .common import add_scenarios, add_subcommand, history


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        commands, "stats", "Your history: solved, best times, attempts, hints, streaks.",
        "  sandbox stats\n  sandbox stats --json\n"
        "  SANDBOX_HOME=~/drills sandbox stats")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    add_scenarios(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ..catalog import discover
    from ..drills import clock
    from ..history import stats
    from . import render

    numbers = stats(history(), {s.id: s.title for s in discover(args.scenarios).values()})
    if args.json:
        print(json.dumps(numbers, indent=2))
        return EXIT_PASS
    out = render.console()
    table = Table(title=f"History in {numbers['home']}", title_justify="left")
    table.add_column("scenario", no_wrap=True)
    for column in ("solved", "best time", "attempts", "hints", "revealed"):
        table.add_column(column)
    for row in numbers["scenarios"]:
        solved = "[green]yes[/]" if row["solved"] else ("open" if row["open"] else "-")
        best = clock(row["best_time_s"])
        if row["best_hints"]:
            best += f" ({row['best_hints']} hint(s))"
        table.add_row(row["id"], solved, best, str(row["attempts"]), str(row["hints"]),
                      str(row["revealed"]))
    out.print(table)
    t, s = numbers["totals"], numbers["streaks"]
    out.print(f"Solved {t['solved']} of {t['scenarios']} scenarios in {t['attempts']} "
              f"attempt(s), {t['verifications']} verification(s), {t['hints']} hint(s), "
              f"{t['revealed']} solution(s) shown; {clock(t['practice_time_s'])} practised "
              f"over {t['drills']} drill(s).")
    out.print(f"Streak: {s['current_days']} day(s) now, longest {s['longest_days']}. "
              f"Quiz: {t['quiz_correct']} of {t['quiz_answers']} answers right.")
    if not t["attempts"] and not t["quiz_answers"]:
        out.print("Nothing recorded yet: `sandbox drill` or `sandbox start ID` to begin.")
    return EXIT_PASS
