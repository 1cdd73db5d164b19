"""sandbox demo: the flagship scenario, broken then fixed."""

from __future__ import annotations

import argparse

from ..errors import EXIT_FAIL, EXIT_PASS
from .common import add_execution, add_subcommand

FLAGSHIP = "exploding-lr-v2"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(commands, "demo",
                            f"Run the flagship scenario ({FLAGSHIP}) broken, then fixed.",
                            "  sandbox demo\n  sandbox demo --device cuda --logdir /tmp/runs")
    add_execution(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..catalog import get
    from ..harness import candidate
    from ..verification import verify
    from . import render

    scenario = get(FLAGSHIP)
    out = render.console()
    out.print(f"[bold]{scenario.title}[/] ({scenario.id})\n{render.unfold(scenario.brief)}\n")
    out.print("[bold]1. The shipped pipeline[/]")
    with render.progress(scenario.criteria.max_steps) as on_event:
        broken = verify(scenario, candidate.make(scenario), device=args.device,
                        logdir=args.logdir, on_event=on_event)
    render.verdict(broken, scenario, out)
    out.print("\n[bold]2. The reference fix[/] (solution/config.yaml: a lower learning rate)")
    with render.progress(scenario.criteria.max_steps) as on_event:
        fixed = verify(scenario, candidate.make(scenario, solution=True), device=args.device,
                       logdir=args.logdir, on_event=on_event)
    render.verdict(fixed, scenario, out)
    out.print(f"\nOpen {fixed.png} for both curves side by side, or run "
              f"`tensorboard --logdir {args.logdir / scenario.id}` to overlay them.\n"
              "Next: `sandbox drill` to fix scenarios against the clock, or `sandbox list`.")
    return EXIT_PASS if (not broken.passed and fixed.passed) else EXIT_FAIL
