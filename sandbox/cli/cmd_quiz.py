"""sandbox quiz: a broken run's curves; pick the cause, then the fix. Scored and recorded."""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from ..errors import EXIT_PASS, SandboxError
from .common import add_execution, add_filters, add_scenarios, add_subcommand, history


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        commands, "quiz", "Read a broken run's curves: name the cause, then the fix.",
        "  sandbox quiz                 # 3 questions from the catalog\n"
        "  sandbox quiz --count 1 --tag evaluation\n"
        "  sandbox quiz --seed 7        # the same questions for a whole class")
    parser.add_argument("--count", type=int, default=3, metavar="N",
                        help="how many runs to read (default: 3)")
    add_filters(parser)
    parser.add_argument("--seed", type=int, metavar="S",
                        help="the same questions in the same order for everyone (without it, "
                             "scenarios you have not solved come first)")
    add_scenarios(parser)
    add_execution(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .. import drills, quiz
    from ..catalog import discover
    from ..plots import draw_quiz
    from . import render
    from .practice import loss_chart

    rng = random.Random(args.seed)
    out, log = render.console(), history()
    catalog = quiz.quizzable(list(discover(args.scenarios).values()))
    seeded = args.seed is not None  # the same quiz for everyone: ignore their histories
    picked = drills.pick(catalog, None if seeded else log, count=args.count,
                         difficulty=args.difficulty,
                         tag=args.tag, rng=rng) if catalog else []
    if not picked:
        raise SandboxError("no scenario has a quiz: block (a one-line cause and fix).")
    rng.shuffle(picked)
    score = 0
    for n, scenario in enumerate(picked, 1):
        out.rule(f"Question {n} of {len(picked)}")
        result = broken_run(scenario, args, out)
        png = Path(args.logdir) / "quiz" / f"{time.strftime('%Y%m%d-%H%M%S')}-q{n}.png"
        draw_quiz(png, result, scenario.criteria,
                  f"Quiz question {n}: what went wrong in this run?")
        loss_chart(result, out)
        out.print(f"curves: {png}", highlight=False)
        for question in quiz.questions(scenario, catalog, rng):
            chosen = ask(question, out)
            log.record_quiz_answer(scenario.id, question.kind, question.choices[chosen],
                                   question.correct)
            if chosen == question.answer:
                score += 1
                out.print("[green]Right.[/]")
            else:
                out.print(f"[red]Not quite.[/] It is: {question.correct}")
        out.print(f"This was [bold]{scenario.id}[/] ({scenario.title}). "
                  f"`sandbox start {scenario.id}` to fix it for real.", highlight=False)
    total = 2 * len(picked)
    out.print(f"\nScore: {score} of {total}. Recorded; `sandbox stats` shows all your answers.")
    return EXIT_PASS


def broken_run(scenario, args: argparse.Namespace, out) -> dict:
    """The newest recorded broken run of this exact scenario, or a fresh one (quietly:
    its folder name would give the answer away).
    """
    from ..harness import candidate
    from ..verification import find_baseline, verify

    recorded = find_baseline(scenario, args.logdir)
    if recorded:
        return recorded[0]
    out.print("Training the run to read (a few seconds)...")
    outcome = verify(scenario, candidate.make(scenario), seeds=scenario.seeds[:1],
                     device=args.device, logdir=args.logdir, with_baseline=False, plot=False)
    return outcome.results[0]


def ask(question, out) -> int:
    """Ask until the answer is a choice; a closed stdin ends the quiz with a clear error."""
    out.print(f"\n[bold]{question.prompt}[/]")
    for i, choice in enumerate(question.choices, 1):
        out.print(f"  {i}) {choice}", highlight=False)
    letters = "abcd"[:len(question.choices)]
    while True:
        try:
            answer = input(f"Your answer [1-{len(question.choices)}]: ").strip().lower()
        except EOFError:
            raise SandboxError("the quiz needs answers typed on the terminal, and stdin is "
                               "closed. Answers given so far are recorded.") from None
        if answer.isdigit() and 1 <= int(answer) <= len(question.choices):
            return int(answer) - 1
        if len(answer) == 1 and answer in letters:
            return letters.index(answer)
        out.print(f"Type a number from 1 to {len(question.choices)}.")
