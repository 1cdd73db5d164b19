"""Terminal pieces the practice commands share: the broken run's symptoms, a workspace
verification with its record, and the watch loop (``watch`` and ``drill`` both use it).
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from .. import drills
from ..catalog import Scenario
from ..errors import SandboxError
from ..history import HINT_PENALTY_S, Attempt, History, HistoryError
from ..home import Workspace
from ..termchart import line_chart
from . import render

if TYPE_CHECKING:
    from ..verification import Verification

POLL_S = 0.4
SETTLE_S = 0.3  # editors save in several writes; wait for the files to stop changing


def loss_chart(result: dict[str, Any], out: Console) -> None:
    """The training loss as text, and the validation accuracy in one line."""
    series = result.get("series", {})
    out.print(escape(line_chart(series.get("loss/train", []), title="loss/train")),
              soft_wrap=True)
    val = series.get("metric/val", [])
    if val:
        test = result.get("test/metric")
        test_text = f"; hidden test {test:.3f}" if test is not None else ""
        out.print(f"metric/val (validation accuracy): {val[0][1]:.3f} at step {val[0][0]} -> "
                  f"{val[-1][1]:.3f} at step {val[-1][0]}{test_text}")


def run_broken(scenario: Scenario, device: str, logdir: Path, out: Console,
               diagnosis: bool = True) -> Verification:
    """Run the shipped pipeline on every seed and show what it looks like: the record is
    the baseline every later PNG draws beside the candidate, seed for seed.
    """
    from ..harness import candidate
    from ..verification import verify

    seeds = ", ".join(map(str, scenario.seeds))
    out.print(f"Running the shipped pipeline (seeds {seeds}) so you can see what is wrong...")
    with render.progress(scenario.criteria.max_steps) as on_event:
        outcome = verify(scenario, candidate.make(scenario), device=device, logdir=logdir,
                         on_event=on_event, with_baseline=False)
    show_symptoms(outcome, out, diagnosis)
    return outcome


def show_symptoms(outcome: Verification, out: Console, diagnosis: bool = True) -> None:
    """Each seed's ending, the first seed's loss chart, the diagnoser's findings."""
    for seed in outcome.seeds:
        out.print(f"seed {seed.seed}: {render.seed_status(seed, outcome.shown_checks)}")
    loss_chart(outcome.results[0], out)
    if diagnosis:
        render.seed_findings(outcome, out)
    render.paths(outcome, out)


def verify_workspace(scenario: Scenario, ws: Workspace, history: History, *, device: str,
                     logdir: Path, out: Console, show: bool = True,
                     seeds: list[int] | None = None, findings: bool = True,
                     stuck: str | None = None) -> tuple[Verification, drills.Recorded]:
    """Verify the workspace and record the verdict against its attempt; only a run
    that covers every one of the scenario's seeds can solve the attempt. ``stuck``: what
    to do for a hint, where that is not the command (a key in a watch).
    """
    from ..verification import verify

    chosen = ws.candidate()
    out.print(f"Verifying your workspace {ws.root} ({edits(ws)})", highlight=False)
    with render.progress(scenario.criteria.max_steps, to_stderr=not show) as on_event:
        outcome = verify(scenario, chosen, seeds=seeds, device=device, logdir=logdir,
                         on_event=on_event)
    if show:  # the verdict first: a history that cannot be written must not hide it
        render.verdict(outcome, scenario, out, findings=findings)
    every_seed = set(scenario.seeds) <= {s.seed for s in outcome.seeds}
    try:
        recorded = drills.record(scenario, history, passed=outcome.passed,
                                 can_solve=every_seed, failed=outcome.shown_failed,
                                 wall_time_s=outcome.wall_time_s, run_group=outcome.run_group)
    except HistoryError as error:
        recorded = drills.Recorded(None, False, unrecorded=str(error))
        render.console(stderr=True).print(
            f"[yellow]warning:[/] the verdict was not recorded in your history: "
            f"{render.safe(str(error))}", highlight=False, soft_wrap=True)
    if show:
        report(outcome, recorded, scenario, out, stuck)
    return outcome, recorded


def report(outcome: Verification, recorded: drills.Recorded, scenario: Scenario,
           out: Console, stuck: str | None = None) -> None:
    """After the verdict: the clock, and on a pass the explanation."""
    attempt = recorded.attempt
    if recorded.unrecorded is not None:
        return  # the warning said why; there is no attempt to report on
    if not outcome.passed:
        if attempt is not None and attempt.status == "open":
            out.print(f"Clock: {drills.clock(attempt.elapsed_s())} so far, {attempt.hints} "
                      f"hint(s). Stuck? {stuck or f'`sandbox hint {scenario.id}`'}.")
        return
    out.print("\n[bold]Why it broke, and why the fix works[/]\n"
              f"{render.unfold(scenario.explanation)}\n")
    render.reference_beside(outcome, scenario, out)
    if recorded.solved_now and attempt is not None:
        out.print(f"[bold green]Solved[/] {scenario.id} in {solve_time(attempt)}. "
                  "Recorded; `sandbox stats` shows your history.")
    elif attempt is not None and attempt.status == "solved":
        out.print(f"Already solved ({solve_time(attempt)}); this pass was recorded but not "
                  f"timed. `sandbox start {scenario.id} --reset` starts a fresh timed attempt.")
    else:
        out.print(f"This pass was recorded but not timed: no attempt is open. `sandbox start "
                  f"{scenario.id}` opens one.")


def edits(ws: Workspace) -> str:
    edited = ws.edited()
    return f"edited: {', '.join(edited)}" if edited else "no edits yet"


def solve_time(attempt: Attempt) -> str:
    """'4m10s', or '4m10s + 2 hints = 8m10s', or a note that the solution was shown."""
    base = drills.clock(attempt.duration_s)
    if attempt.revealed:
        return f"{base} (solution shown, so it does not count as a clean solve)"
    if attempt.hints:
        return (f"{base} + {attempt.hints} hint(s) x {HINT_PENALTY_S // 60}m = "
                f"{drills.clock(attempt.score_s)}")
    return base


def solves(attempts: list[Attempt]) -> str:
    """The best solve first (what ``stats`` and ``list`` show), then the latest if it
    differs. A solve with the solution shown is no best; it is only the latest.
    """
    clean = [a for a in attempts if a.score_s is not None]
    solved = [a for a in attempts if a.status == "solved"]
    if not solved:
        return "Not solved yet."
    latest = solved[-1]
    if not clean:
        return f"You solved this in {solve_time(latest)}."
    best = min(clean, key=lambda a: a.score_s or 0.0)
    text = f"Your best solve: {solve_time(best)}"
    if len(solved) > 1:
        text += f" ({len(solved)} solves)"
    if latest.id != best.id:
        text += f"; the latest took {solve_time(latest)}"
    return text + "."


def watch(scenario: Scenario, ws: Workspace, history: History, *, device: str, logdir: Path,
          out: Console, deadline: float | None = None, can_skip: bool = False,
          findings: bool = True) -> str:
    """Verify on every save until a pass. Returns 'solved', 'quit', 'skipped' or 'time-up'.

    Keys (single presses on a terminal, lines from a pipe): Enter = verify now, h = hint,
    q = quit, s = skip. A solve recorded by another terminal (``sandbox verify``) ends the
    watch too.
    """
    with Keyboard() as keyboard:
        return _watch(scenario, ws, history, keyboard, device=device, logdir=logdir, out=out,
                      deadline=deadline, can_skip=can_skip, findings=findings)


def _watch(scenario: Scenario, ws: Workspace, history: History, keyboard: Keyboard, *,
           device: str, logdir: Path, out: Console, deadline: float | None, can_skip: bool,
           findings: bool) -> str:
    press = "press " if keyboard.single_keys else "type "
    keys = "Enter: verify now, h: hint, " + ("s: skip, " if can_skip else "") + "q: quit"
    watched = history.latest(scenario.id)
    out.print(f"Watching {ws.root} for saves ({keys}).", highlight=False)
    last = ws.snapshot()
    while True:
        if deadline is not None and time.time() >= deadline:
            return "time-up"
        if watched is not None and watched.status == "open" \
                and history.attempt(watched.id).status == "solved":
            out.print("Solved from another terminal.")
            return "solved"
        command = keyboard.read(POLL_S)
        if command in ("q", "quit"):
            return "quit"
        if command in ("s", "skip") and can_skip:
            return "skipped"
        if command in ("h", "hint"):
            show_hint(scenario, history, out)
            continue
        if command not in (None, ""):
            if command.isprintable():  # a stray escape sequence is not worth a line
                out.print(f"Unknown key {render.safe(command)!r}. {keys}.", highlight=False)
            continue
        changed = ws.snapshot() != last
        if command == "" or changed:
            if changed:
                time.sleep(SETTLE_S)
            last = ws.snapshot()
            try:
                outcome, _ = verify_workspace(scenario, ws, history, device=device,
                                              logdir=logdir, out=out, findings=findings,
                                              stuck=f"{press}h for a hint")
            except SandboxError as error:  # a typo in the workspace: say so, keep watching
                out.print(f"[red]{render.safe(error)}[/]")
                outcome = None
            if outcome is not None and outcome.passed:
                return "solved"
            out.print(f"Watching {ws.root} for saves ({keys}).", highlight=False)


def show_hint(scenario: Scenario, history: History, out: Console) -> None:
    attempt, used, new = drills.take_hint(scenario, history)
    for n, text in enumerate(scenario.hints[:used], 1):
        style = "bold" if (n == used and new) else "dim"
        out.print(f"[{style}]Hint {n} of {len(scenario.hints)}:[/] {escape(render.unfold(text))}")
    if new:
        out.print(f"(+{HINT_PENALTY_S // 60}m on your time; {used} hint(s) used.)")
    elif attempt.status == "solved":
        out.print("(You have solved this one, so hints are free now.)")
    else:
        out.print(f"That was the last hint, already counted. `sandbox solution {scenario.id}` "
                  "shows the reference fix.")


class Keyboard:
    """Keys typed on stdin, without blocking.

    On a terminal each key counts as it is pressed (cbreak mode: no Enter, no echo;
    Ctrl-C still interrupts), and the terminal's settings are put back on exit, however
    the watch ends. From a pipe, whole lines are read as before. Quiet once stdin is
    closed or cannot be polled.
    """

    def __init__(self) -> None:
        self.open = os.name == "posix" and sys.stdin is not None and not sys.stdin.closed
        self._saved: list | None = None

    def __enter__(self) -> Keyboard:
        if self.open and sys.stdin.isatty():
            import termios
            import tty
            try:
                self._saved = termios.tcgetattr(sys.stdin.fileno())
                tty.setcbreak(sys.stdin.fileno())
            except termios.error:
                self._saved = None
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def restore(self) -> None:
        if self._saved is not None:
            import termios
            with contextlib.suppress(termios.error):
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None

    @property
    def single_keys(self) -> bool:
        return self._saved is not None

    def read(self, timeout: float) -> str | None:
        """A key ("" for Enter), a typed line from a pipe, or None if nothing came."""
        if not self.open:
            time.sleep(timeout)
            return None
        try:
            ready, _, _ = select.select([sys.stdin], [], [], timeout)
        except (OSError, ValueError):
            self.open = False
            return None
        if not ready:
            return None
        if self.single_keys:
            key = os.read(sys.stdin.fileno(), 1).decode("utf-8", "replace")
            if key == "":
                self.open = False
                return None
            if key == "\x1b":  # an arrow or function key: its sequence is not a command
                while select.select([sys.stdin], [], [], 0.05)[0]:
                    os.read(sys.stdin.fileno(), 64)
                return None
            return "" if key in "\r\n" else key.lower()
        line = sys.stdin.readline()
        if line == "":  # end of input: keep watching files only
            self.open = False
            return None
        return line.strip().lower()
