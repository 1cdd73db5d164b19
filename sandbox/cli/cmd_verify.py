"""sandbox verify ID: judge a candidate on every seed. Exit 0 pass, 1 fail, 2 bad input.

With no candidate flag, the candidate is your workspace copy when ``sandbox start`` made
one (its verdict is recorded in the history), else the shipped pipeline.
"""

from __future__ import annotations

import argparse
import json

from ..errors import EXIT_FAIL, EXIT_PASS, ConfigError
from .common import add_candidate, add_subcommand, history, make_candidate


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        commands, "verify", "Verify a fix on every seed of a scenario.",
        "  sandbox verify exploding-lr-v2                 # your workspace, after `start`\n"
        "  sandbox verify exploding-lr-v2 --shipped       # the shipped (broken) pipeline\n"
        "  sandbox verify exploding-lr-v2 --set optimizer.lr=0.02\n"
        "  sandbox verify exploding-lr-v2 --config my-config.yaml\n"
        "  sandbox verify batchnorm-eval-v2 --pipeline my_pipeline.py --json\n"
        "  sandbox verify data-leakage-v2 --solution --seeds 5")
    add_candidate(parser)
    parser.add_argument("--seeds", type=int, metavar="N",
                        help="run N seeds: the scenario's own first, then further ones")
    parser.add_argument("--json", action="store_true",
                        help="print the full result (verdict, per-seed criteria, paths)")
    parser.add_argument("--shipped", action="store_true",
                        help="verify the shipped pipeline even when you have a workspace")
    parser.set_defaults(handler=run)


def workspace_of(args: argparse.Namespace, scenario):
    """The user's workspace, when no flag names another candidate and one exists."""
    from ..home import Workspace, home_dir

    if args.shipped or args.solution or args.config or args.pipeline or args.overrides:
        return None
    ws = Workspace(scenario, home_dir())
    return ws if ws.exists() else None


def seed_list(listed: tuple[int, ...], n: int | None) -> list[int]:
    if n is None:
        return list(listed)
    if n < 1:
        raise ConfigError(f"--seeds {n}: run at least one seed.")
    extra = range(max(listed) + 1, max(listed) + 1 + n)
    return [*listed, *extra][:n]


def run(args: argparse.Namespace) -> int:
    from ..catalog import get
    from ..verification import verify
    from . import practice, render

    scenario = get(args.scenario, args.scenarios)
    ws = workspace_of(args, scenario)
    if ws is not None:
        outcome, recorded = practice.verify_workspace(
            ws.scenario, ws, history(), device=args.device, logdir=args.logdir,
            out=render.console(stderr=args.json), show=not args.json,
            seeds=seed_list(ws.scenario.seeds, args.seeds))
        if args.json:
            attempt = recorded.attempt
            print(json.dumps({**outcome.to_json(), "workspace": str(ws.root),
                              "recorded": recorded.unrecorded is None,
                              "attempt": None if attempt is None else {
                                  "id": attempt.id, "status": attempt.status,
                                  "hints": attempt.hints, "revealed": attempt.revealed,
                                  "time_s": attempt.duration_s, "score_s": attempt.score_s,
                                  "solved_now": recorded.solved_now}}, indent=2, allow_nan=False))
        return EXIT_PASS if outcome.passed else EXIT_FAIL
    scenario, chosen = make_candidate(args, scenario)
    seeds = seed_list(scenario.seeds, args.seeds)
    with render.progress(scenario.criteria.max_steps, to_stderr=args.json) as on_event:
        outcome = verify(scenario, chosen, seeds=seeds, device=args.device,
                         logdir=args.logdir, on_event=on_event)
    if args.json:
        print(json.dumps(outcome.to_json(), indent=2, allow_nan=False))
    else:
        render.verdict(outcome, scenario)
    return EXIT_PASS if outcome.passed else EXIT_FAIL
