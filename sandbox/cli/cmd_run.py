"""sandbox run ID: one seed of a candidate, with telemetry and the measurements."""

from __future__ import annotations

import argparse
import json

from ..errors import EXIT_FAIL, EXIT_PASS
from .common import add_candidate, add_subcommand, make_candidate, seed


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        commands, "run", "Train one seed of a scenario and show what it measured.",
        "  sandbox run exploding-lr-v2\n"
        "  sandbox run exploding-lr-v2 --set optimizer.lr=0.02\n"
        "  sandbox run vanishing-gradients-v2 --solution --seed 2 --device cpu")
    add_candidate(parser)
    parser.add_argument("--seed", type=seed, help="seed to run (default: the scenario's first)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..verification import verify
    from . import render

    scenario, chosen = make_candidate(args)
    seed = scenario.seeds[0] if args.seed is None else args.seed
    with render.progress(scenario.criteria.max_steps, to_stderr=args.json) as on_event:
        outcome = verify(scenario, chosen, seeds=[seed], device=args.device,
                         logdir=args.logdir, on_event=on_event)
    if args.json:
        print(json.dumps(outcome.to_json(), indent=2, allow_nan=False))
    else:
        out = render.console()
        result, verdict = outcome.results[0], outcome.seeds[0]
        out.print(f"{scenario.id} seed {seed} on {render.safe(verdict.device or '?')}: "
                  f"{render.seed_status(verdict, outcome.shown_checks)}")
        for check in verdict.checks[1:]:
            if check.name in outcome.shown_checks:
                out.print(f"  {check.name:<18} {render.safe(check.measured)}")
        if result.get("train_time_s") is not None:
            out.print(f"  {'training time':<18} {result['train_time_s']:.2f} s")
        render.seed_findings(outcome, out)
        render.paths(outcome, out)
        out.print(f"`sandbox verify {scenario.id}` judges all {len(scenario.seeds)} seeds.")
    return EXIT_PASS if outcome.seeds[0].status == "ok" else EXIT_FAIL
