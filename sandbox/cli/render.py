"""Terminal output: tables, live progress and verdicts (rich is imported only here)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..catalog import Scenario

if TYPE_CHECKING:  # listing must stay fast: no harness imports at run time
    from ..diagnosis import Finding, RunDiagnosis
    from ..harness.job import Job
    from ..verification import EventFn, Verification

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


def scenario_table(scenarios: Iterable[Scenario]) -> None:
    table = Table(title="Scenarios", title_justify="left")
    table.add_column("id", no_wrap=True)
    for column in ("title", "difficulty", "tags"):
        table.add_column(column)
    for s in scenarios:
        table.add_row(s.id, s.title, STARS.get(s.difficulty, "?"), ", ".join(s.tags))
    out = console()
    out.print(table)
    out.print("Next: `sandbox start ID` to work on one against the clock, `sandbox drill` "
              "for a timed drill, `sandbox show ID` for a brief.")


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
        label = Path(job.run_dir).parent.name.split("-", 2)[-1]
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
        if check.name not in shown:
            continue
        cells = []
        for seed in outcome.seeds:
            c = seed.checks[row]
            measured = c.measured if len(c.measured) < 64 else c.measured[:61] + "..."
            measured = safe(measured)
            cells.append(f"[green]ok[/] {measured}" if c.passed else f"[red]FAIL[/] {measured}")
        table.add_row(check.name, check.required, *cells)
    out.print(table)
    for seed in outcome.seeds:
        if seed.error:
            out.print(f"[red]seed {seed.seed}[/] {safe(seed.status)}: {safe(seed.error)}")
    n_pass = sum(s.passed for s in outcome.seeds)
    if outcome.passed:
        out.print(f"[bold green]PASS[/]: all {len(outcome.seeds)} seeds meet every criterion "
                  f"({outcome.wall_time_s:.1f} s).")
    else:
        out.print(f"[bold red]FAIL[/]: {len(outcome.seeds) - n_pass} of {len(outcome.seeds)} "
                  f"seeds fail ({', '.join(outcome.shown_failed)}); "
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
    logdir = Path(outcome.run_group).parent
    out.print(f"  logs:  {safe(outcome.run_group)}")
    out.print(f"  curves: {safe(outcome.png)}")
    out.print(f"  compare runs: tensorboard --logdir {safe(logdir)}")


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
