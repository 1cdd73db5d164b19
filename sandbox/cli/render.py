"""Terminal output: tables, live progress and verdicts (rich is imported only here)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..catalog import Scenario

if TYPE_CHECKING:  # listing must stay fast: no harness imports at run time
    from ..criteria import Check
    from ..diagnosis import Finding, RunDiagnosis
    from ..drills import Progress
    from ..harness.job import Job
    from ..verification import EventFn, SeedVerdict, Verification

STARS = {1: "*", 2: "**", 3: "***"}


CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(text: object) -> str:
    """Text a candidate or a log controls, made inert for the terminal: no rich markup
    (``[/]`` would crash it, ``[green]`` would restyle it) and no control characters
    (an escape sequence could clear the screen and print a PASS of its own).
    """
    return escape(CONTROL.sub("?", str(text)))


def unfold(text: str) -> str:
    """YAML block text keeps its line breaks; let the terminal wrap paragraphs instead."""
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n"))


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False)


WIDE_LIST = 120  # columns from which `sandbox list` has room for the tags
LIST_COLUMNS = ("id", "title", "level", "tags", "status", "best")


def scenario_table(scenarios: list[Scenario], states: dict[str, Progress]) -> None:
    """The catalog with each scenario's status and best time, and how far along you are:
    one line per scenario at any width (titles cut with an ellipsis, tags only where they
    fit), so 25 scenarios stay one screen.
    """
    from ..drills import TUTORIAL, clock, counted

    rows = []
    for s in scenarios:
        state = states[s.id]
        best = clock(state.best_s) if state.best_s is not None else "-"
        if state.best_hints:
            best += f" ({state.best_hints} hint(s))"
        title = f"{s.title} (tutorial)" if TUTORIAL in s.tags else s.title
        rows.append((s.id, title, STARS.get(s.difficulty, "?"), ", ".join(s.tags),
                     state.status, best))
    out = console()
    wide = out.width >= WIDE_LIST
    widths = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in enumerate(LIST_COLUMNS)]
    # what is left for title (and tags) once the other columns and the borders, 3 per
    # column and 1, are drawn whole; 3 spare so that rich never has to squeeze
    columns = len(LIST_COLUMNS) - (not wide)
    fixed = widths[0] + widths[2] + widths[4] + widths[5] + 3 * columns + 1 + 3
    room = max(out.width - fixed, 12)
    tags_w = min(widths[3], room * 2 // 5)
    title_w = min(widths[1], room - tags_w if wide else room)
    table = Table(title="Scenarios", title_justify="left")
    for i, header in enumerate(LIST_COLUMNS):
        if i != 3 or wide:
            table.add_column(header, no_wrap=True,
                             width=title_w if i == 1 else tags_w if i == 3 else widths[i])
    style = {"solved": "[green]solved[/]", "started": "[yellow]started[/]", "new": "new"}
    for sid, title, level, tags, status, best in rows:
        cells = [sid, safe(_cut(title, title_w)), level,
                 *([safe(_cut(tags, tags_w))] if wide else []), style[status], best]
        table.add_row(*cells)
    out.print(table)
    catalog = counted(scenarios)
    solved = sum(states[s.id].status == "solved" for s in catalog)
    started = sum(states[s.id].status == "started" for s in catalog)
    out.print(f"{solved} of {len(catalog)} solved, {started} started.")
    if not wide:
        out.print(f"[dim]Tags are shown at {WIDE_LIST} columns or more, and in `sandbox list "
                  "--json`.[/]")
    out.print("Next: `sandbox next` starts the easiest one you have not solved; `sandbox "
              "start ID` a given one, `sandbox drill` a timed drill, `sandbox show ID` a brief.")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(width - 1, 0)].rstrip() + "…"


def progress_label(group: str) -> str:
    """A run folder's name as a short row label: ``attempt-04 workspace (pipeline.py
    edited)`` -> ``workspace``; ``20250101-120000-shipped`` (older logs) -> ``shipped``.
    """
    from ..runs import label_of
    name = label_of(group).split(" (", 1)[0]
    return name if len(name) <= 24 else name[:21] + "..."


@contextlib.contextmanager
def progress(max_steps: int, to_stderr: bool = False) -> Iterator[EventFn]:
    """A live row per seed: step count and last loss, then how the seed ended."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(bar_width=24),
                   TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                   console=console(to_stderr), transient=False)
    rows: dict[str, Any] = {}

    def on_event(job: Job, kind: str, payload: Any) -> None:
        key = job.run_dir
        label = progress_label(Path(job.run_dir).parent.name)
        if kind == "started":
            rows[key] = bar.add_task(f"{label:>12} seed {job.seed}", total=max_steps,
                                     status="starting")
        elif kind == "progress":
            step, loss = payload
            bar.update(rows[key], completed=min(step, max_steps),
                       status=f"step {step}  loss {loss:.4g}")
        elif kind == "finished":
            done = payload.get("status", "?")
            mark = "[green]done[/]" if done == "ok" else f"[red]{done}[/]"
            bar.update(rows[key], completed=max_steps, status=mark)

    with bar:
        yield on_event


# A seed that stopped early fails these rows as a consequence: its cause is shown once,
# in the row :func:`cause_row` names, and the rest say only that the run stopped.
CONSEQUENCES = frozenset({"completes", "finite loss", "train loss", "honest validation",
                          "budget"})
CELL_CHARS = 64


def cause_row(seed: SeedVerdict) -> str | None:
    """The row that says why a seed stopped before the end (None if it finished)."""
    if seed.status == "ok":
        return None
    return {"diverged": "finite loss", "over-budget": "budget"}.get(seed.status, "completes")


def _consequence(seed: SeedVerdict, check: Check) -> bool:
    """A row that says nothing of its own for a seed that stopped early: an outcome, or
    a criterion left unmeasured because nothing was returned to measure.
    """
    cause = cause_row(seed)
    return cause is not None and check.name != cause and (
        check.name in CONSEQUENCES or check.name.startswith("test ")
        or (not check.passed and check.measured.startswith("not measured")))


def _cell(seed: SeedVerdict, check: Check) -> str:
    if _consequence(seed, check):
        return "[dim]- the run stopped early[/]"
    measured = check.measured if len(check.measured) < CELL_CHARS else \
        check.measured[:CELL_CHARS - 3] + "..."
    return f"[green]ok[/] {safe(measured)}" if check.passed else f"[red]FAIL[/] {safe(measured)}"


def failed_causes(outcome: Verification) -> list[str]:
    """The failed criteria a person should read: for a seed that stopped early, its cause
    and not the rows that failed only because nothing was left to measure.
    """
    failed = {c.name for seed in outcome.seeds for c in seed.checks
              if not c.passed and not _consequence(seed, c)}
    return [name for name in outcome.shown_failed if name in failed]


def seed_status(seed: SeedVerdict, shown: list[str]) -> str:
    """How one seed's run ended, in words ("ok" alone reads as a pass, even for a run
    stuck at chance). ``shown``: the criteria a person may see named.
    """
    if seed.status == "ok":
        failed = [c.name for c in seed.checks if not c.passed and c.name in shown]
        verdict = "meets every criterion" if seed.passed else \
            f"fails {', '.join(failed)}" if failed else "fails"
        return f"ran to the end and {verdict}"
    return f"{safe(seed.status)}" + (f": {safe(seed.error)}" if seed.error else "")


def verdict(outcome: Verification, scenario: Scenario, out: Console | None = None,
            findings: bool = True) -> None:
    """The per-criterion table (required vs measured, per seed), errors, verdict, the
    diagnoser's findings (left out in a mock interview), paths.
    """
    out = out or console()
    table = Table(title=f"{scenario.id}: {safe(outcome.description)}", title_justify="left")
    table.add_column("criterion")
    table.add_column("required")
    for seed in outcome.seeds:
        table.add_column(f"seed {seed.seed}")
    shown = outcome.shown_checks
    for row, check in enumerate(outcome.seeds[0].checks):
        if check.name in shown:
            table.add_row(check.name, check.required,
                          *(_cell(seed, seed.checks[row]) for seed in outcome.seeds))
    out.print(table)
    for seed in outcome.seeds:  # the whole error, where the table had to cut it
        if seed.error and len(seed.error) + 4 >= CELL_CHARS:
            out.print(f"[red]seed {seed.seed}[/] {safe(seed.status)}: {safe(seed.error)}")
    n_pass = sum(s.passed for s in outcome.seeds)
    if outcome.passed:
        out.print(f"[bold green]PASS[/]: all {len(outcome.seeds)} seeds meet every criterion "
                  f"({outcome.wall_time_s:.1f} s).")
    else:
        stopped = sum(cause_row(s) is not None for s in outcome.seeds)
        early = f"; {stopped} stopped early" if stopped else ""
        out.print(f"[bold red]FAIL[/]: {len(outcome.seeds) - n_pass} of {len(outcome.seeds)} "
                  f"seeds fail ({', '.join(failed_causes(outcome))}{early}); "
                  f"{outcome.wall_time_s:.1f} s.")
    integrity_notes(outcome, out)
    if findings:
        known_decoy(outcome, out)
        seed_findings(outcome, out)
    paths(outcome, out)


def integrity_notes(outcome: Verification, out: Console) -> None:
    """The flags a grader should look at (they are notes, not criteria)."""
    if outcome.flags:
        out.print("Integrity notes (not criteria; `--json` has them under 'flags'):")
    for flag in outcome.flags:
        seeds = ", ".join(map(str, flag["seeds"]))
        out.print(f"  [magenta]{safe(flag['flag'])}[/] (seed {seeds}): {safe(flag['detail'])}")


def known_decoy(outcome: Verification, out: Console) -> None:
    """A failed fix that looks like one of the scenario's known wrong fixes: say why."""
    matched = outcome.matched
    if not outcome.passed and matched and matched["kind"] == "decoy":
        out.print(f"This looks like a known plausible-but-wrong fix ({matched['summary']}): "
                  f"{matched['reason']}")


def reference_beside(outcome: Verification, scenario: Scenario, out: Console) -> None:
    """After a pass: which known fix it was, and the reference fix when it was not that."""
    from ..drills import solution_diff
    matched = outcome.matched
    if matched and matched["kind"] == "solution":
        return
    if matched and matched["kind"] == "alternative":
        out.print(f"Your fix matches a known alternative, '{matched['name']}' "
                  f"({matched['summary']}): {matched['reason']}")
    else:
        out.print("Your fix differs from the reference fix and from the known alternatives.")
    out.print("The reference fix, beside yours:")
    diff(solution_diff(scenario), out)


def diff(text: str, out: Console) -> None:
    """A unified diff, coloured."""
    for line in text.splitlines():
        style = ("green" if line.startswith("+") and not line.startswith("+++") else
                 "red" if line.startswith("-") and not line.startswith("---") else
                 "cyan" if line.startswith("@@") else None)
        out.print(line, style=style, markup=False, highlight=False, soft_wrap=True)


def seed_findings(outcome: Verification, out: Console) -> None:
    """What the diagnoser names in these seeds' logs: each symptom once, with its seeds."""
    by_symptom: dict[str, list[tuple[int, Finding]]] = {}
    for seed in outcome.seeds:
        for finding in seed.findings:
            by_symptom.setdefault(finding.symptom, []).append((seed.seed, finding))
    if not by_symptom:
        out.print("Diagnosis: no symptom in the curves.")
        return
    out.print("Diagnosis of the curves (`sandbox diagnose` on the logs for causes and fixes):")
    for symptom, hits in by_symptom.items():
        seeds = ", ".join(str(seed) for seed, _ in hits)
        seed, first = hits[0]
        since = f" since step {first.step}" if first.step is not None else ""
        out.print(f"  [yellow]{safe(symptom)}[/] (seed {seeds}){since}: {safe(first.evidence)}")


def finding(item: Finding, out: Console) -> None:
    since = f" since step {item.step}" if item.step is not None else ""
    follows = f" [dim](consistent with {item.follows})[/]" if item.follows else ""
    out.print(f"  [bold yellow]{item.symptom}[/]{since}: {item.title}{follows}")
    out.print(f"    evidence: {safe(item.evidence)}")
    out.print("    likely causes: " + "; ".join(item.causes))
    out.print("    try: " + "; ".join(item.fixes))


def diagnosis(runs: list[RunDiagnosis], root: Path, out: Console | None = None) -> None:
    """The ``sandbox diagnose`` report: per run, its findings with causes and fixes."""
    out = out or console()
    for run in runs:
        out.print(f"[bold]{safe(root / run.name if run.name != '.' else root)}[/]")
        for note in run.notes:
            out.print(f"  [dim]note: {safe(note)}[/]")
        if run.readable and not run.findings:
            out.print("  [green]no symptom found[/]")
        for item in run.findings:
            finding(item, out)
    flagged = sum(bool(run.findings) for run in runs)
    out.print(f"{len(runs)} run(s), {flagged} with findings.")


def paths(outcome: Verification, out: Console) -> None:
    """One line each, never broken: run names hold spaces, and a path cut at one cannot be
    copied (the terminal still wraps a long line for the eye).
    """
    out.print(f"  logs:  {safe(outcome.run_group)}", soft_wrap=True)
    out.print(f"  curves: {safe(outcome.png)}", soft_wrap=True)
    out.print(f"  compare runs: sandbox tb {safe(outcome.scenario)} (or --compare for the "
              "broken run beside your latest)", soft_wrap=True)


def margins(rows: list[dict[str, Any]], out: Console) -> None:
    """``sandbox check``'s report: every fix it ran, with the criteria that decide it on
    their worst seed (the failed ones for a fix that fails, the test metric and the
    root-cause criteria for one that passes), so authors see each fix's margin.
    """
    out.print("[bold]Fixes the check ran[/] (each criterion on its worst seed):")
    outcome_only = ("completes", "finite loss", "train loss", "honest validation", "budget")
    for row in rows:
        cells = row["criteria"]
        shown = [n for n, c in cells.items() if not c["passed"]] if not row["passed"] else \
            [n for n in cells if n not in outcome_only]
        verdict = "[green]pass[/]" if row["passed"] else "[red]fail[/]"
        out.print(f"  {verdict} {row['kind']} [bold]{row['name']}[/]")
        for name in shown:
            cell = cells[name]
            colour = "green" if cell["passed"] else "red"
            out.print(f"      [{colour}]{name}[/]: {safe(cell['measured'])} "
                      f"[dim](required {safe(cell['required'])})[/]", soft_wrap=True)
