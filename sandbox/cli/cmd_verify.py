"""sandbox verify ID: judge a candidate on every seed. Exit 0 pass, 1 fail, 2 bad input."""

from __future__ import annotations

import argparse
import json

from ..errors import EXIT_FAIL, EXIT_PASS, ConfigError
from .common import add_candidate, add_subcommand, make_candidate


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(
        commands, "verify", "Verify a fix on every seed of a scenario.",
        "  sandbox verify exploding-lr-v1                 # the shipped (broken) pipeline\n"
        "  sandbox verify exploding-lr-v1 --set optimizer.lr=0.02\n"
        "  sandbox verify exploding-lr-v1 --config my-config.yaml\n"
        "  sandbox verify batchnorm-eval-v1 --pipeline my_pipeline.py --json\n"
        "  sandbox verify data-leakage-v1 --solution --seeds 5")
    add_candidate(parser)
    parser.add_argument("--seeds", type=int, metavar="N",
                        help="run N seeds: the scenario's own first, then further ones")
    parser.add_argument("--json", action="store_true",
                        help="print the full result (verdict, per-seed criteria, paths)")
    parser.set_defaults(handler=run)


def seed_list(listed: tuple[int, ...], n: int | None) -> list[int]:
    if n is None:
        return list(listed)
    if n < 1:
        raise ConfigError(f"--seeds {n}: run at least one seed.")
    extra = range(max(listed) + 1, max(listed) + 1 + n)
    return [*listed, *extra][:n]


def run(args: argparse.Namespace) -> int:
    from ..verification import verify
    from . import render

    scenario, chosen = make_candidate(args)
    seeds = seed_list(scenario.seeds, args.seeds)
    with render.progress(scenario.criteria.max_steps, to_stderr=args.json) as on_event:
        outcome = verify(scenario, chosen, seeds=seeds, device=args.device,
                         logdir=args.logdir, on_event=on_event)
    if any(s.status == "bad-device" for s in outcome.seeds):
        raise ConfigError(outcome.seeds[0].error or "the device is not available")
    if args.json:
        print(json.dumps(outcome.to_json(), indent=2))
    else:
        render.verdict(outcome, scenario)
    return EXIT_PASS if outcome.passed else EXIT_FAIL
