"""sandbox quiz: a broken run's curves, then questions on them (what they show, what to
check first, the cause, the fix), each answer explained. Scored and recorded.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

from ..errors import EXIT_PASS, SandboxError
from .common import add_execution, add_filters, add_scenarios, add_subcommand, history

QUIZ_DIR = "quiz"  # <home>/quiz/: the quiz's own runs and PNGs, apart from runs/<scenario>/


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        commands, "quiz", "Read a broken run's curves and answer questions on them: what "
        "they show, what to check first, the cause, the fix.",
        "  sandbox quiz                 # the curves of 3 scenarios, 3 or more questions each\n"
        "  sandbox quiz --count 1 --tag evaluation\n"
        "  sandbox quiz --seed 7        # the same questions for a whole class")
    parser.add_argument("--count", type=int, default=3, metavar="N",
                        help="how many runs to read (default: 3)")
    add_filters(parser)
    parser.add_argument("--seed", type=int, metavar="S",
                        help="the same runs and questions in the same order for everyone "
                             "(without it, scenarios you have not solved come first)")
    add_scenarios(parser)
    add_execution(parser)
    parser._option_string_actions["--logdir"].help = (
        "where your recorded runs are (default: ./runs, or $SANDBOX_LOGDIR); the quiz "
        "only reads it")
    parser.epilog += ("\n\nThe runs the quiz trains, and its PNGs, go to <home>/quiz/ "
                      "($SANDBOX_HOME, or ./workspace),\nnever next to your attempts in "
                      "--logdir.")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .. import quiz
    from ..catalog import discover
    from ..home import ensure_home, home_dir
    from ..plots import draw_quiz
    from . import render
    from .practice import loss_chart

    rng = random.Random(args.seed)
    out, log = render.console(), history()
    seeded = args.seed is not None  # the same quiz for everyone: ignore their histories
    rounds = quiz.plan(list(discover(args.scenarios).values()), None if seeded else log,
                       count=args.count, difficulty=args.difficulty, tag=args.tag, rng=rng)
    root = ensure_home(home_dir()) / QUIZ_DIR
    score = total = 0
    for n, chosen in enumerate(rounds, 1):
        out.rule(f"Run {n} of {len(rounds)}")
        folder = new_folder(root, n)
        result = curves(chosen, folder, args, out)
        png = draw_quiz(folder / "curves.png", result, chosen.scenario.criteria,
                        f"Quiz, run {n}: what happened in this run?")
        loss_chart(result, out)
        out.print(f"curves: {png}", highlight=False, soft_wrap=True)
        for k, question in enumerate(chosen.questions, 1):
            picked = ask(question, f"{n}.{k}", out)
            log.record_quiz_answer(chosen.scenario.id, question.kind,
                                   question.choices[picked].text, question.correct.text)
            total += 1
            score += picked == question.answer
            explain(question, picked, out)
        out.print(f"\nThis was [bold]{chosen.scenario.id}[/] ({render.safe(chosen.scenario.title)})"
                  f"; these curves: {render.safe(chosen.run.about)}. "
                  f"`sandbox start {chosen.scenario.id}` to fix it for real.", highlight=False)
    out.print(f"\nScore: {score} of {total}. Recorded; `sandbox stats` shows all your answers.")
    return EXIT_PASS


def new_folder(root: Path, number: int) -> Path:
    """``<home>/quiz/<yyyymmdd-hhmmss>-q<number>``, a new folder that names nothing it
    holds (the scenario, the run).
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        folder = root / (f"{stamp}-q{number}" if n == 1 else f"{stamp}-q{number}-{n}")
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
        except OSError as exc:
            raise SandboxError(f"cannot write the quiz's runs under {root}: {exc.strerror}. "
                               "Set SANDBOX_HOME to a folder you can write.") from None
    raise SandboxError(f"could not create a new quiz folder under {root}")


def curves(chosen, folder: Path, args: argparse.Namespace, out) -> dict:
    """The run's curves: for the catalog's broken run, the newest one recorded under
    --logdir when there is one (read, never written); otherwise trained now, on one
    seed, into ``folder/run``.
    """
    from .. import quiz
    from ..runs import find_baseline
    from . import render

    if chosen.run.is_shipped:
        recorded = find_baseline(chosen.scenario, args.logdir)
        if recorded:
            return recorded[0]
    out.print("Training the run to read (a few seconds)...")
    with render.progress(chosen.scenario.criteria.max_steps) as on_event:
        return quiz.train(chosen.scenario, chosen.run, folder / "run", args.device, on_event)


def ask(question, number: str, out) -> int:
    """Ask until the answer is a choice; a closed stdin ends the quiz with a clear error."""
    from ..quiz import KINDS
    from . import render

    out.print(f"\n[bold]{number} ({KINDS[question.kind]}). {render.safe(question.prompt)}[/]")
    for i, choice in enumerate(question.choices, 1):
        out.print(f"  {i}) {render.safe(choice.text)}", highlight=False)
    letters = "abcd"[:len(question.choices)]
    while True:
        try:
            answer = input(f"Your answer [1-{len(question.choices)}]: ").strip().lower()
            if not sys.stdin.isatty():  # piped answers: show each on its own line
                out.print(render.safe(answer), highlight=False)
        except EOFError:
            raise SandboxError("the quiz needs answers typed on the terminal, and stdin is "
                               "closed. Answers given so far are recorded.") from None
        if answer.isdigit() and 1 <= int(answer) <= len(question.choices):
            return int(answer) - 1
        if len(answer) == 1 and answer in letters:
            return letters.index(answer)
        out.print(f"Type a number from 1 to {len(question.choices)}.")


def explain(question, picked: int, out) -> None:
    """Why the picked choice is wrong for these curves, then why the right one is right."""
    from . import render

    right = question.correct
    if picked == question.answer:
        out.print(f"[green]Right.[/] {render.safe(right.why)}", highlight=False)
        return
    out.print(f"[red]Not quite.[/] {render.safe(question.choices[picked].why)}",
              highlight=False)
    out.print(f"The answer is {question.answer + 1}) {render.safe(right.text)}: "
              f"{render.safe(right.why)}", highlight=False)
