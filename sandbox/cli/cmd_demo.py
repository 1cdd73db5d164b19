"""sandbox demo: the tutorial scenario, broken then fixed.

The demo shows a fix, so it runs the tutorial, a scenario made for it (tagged
``tutorial``: drills, the quiz and ``next`` leave it out). It never runs a catalog
scenario, whose fix is the candidate's to find.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..errors import EXIT_FAIL, EXIT_PASS
from .common import add_execution, add_subcommand

if TYPE_CHECKING:
    from ..catalog import Scenario

TUTORIAL = "tutorial-first-fix-v1"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(commands, "demo",
                            f"Run the tutorial scenario ({TUTORIAL}) broken, then fixed.",
                            "  sandbox demo\n  sandbox demo --device cuda --logdir /tmp/runs")
    add_execution(parser)
    parser.set_defaults(handler=run)


def fix_summary(scenario: Scenario) -> str:
    """What the reference fix changes, in one line: each config key the solution's
    config.yaml changes (``optimizer.weight_decay 0.1 -> 0.0005``), and its code files.
    """
    from .. import _yaml, config

    changes = []
    shipped = config.flatten(_yaml.load_file(scenario.config_path))
    for path in sorted(p for p in scenario.solution_dir.iterdir() if p.is_file()):
        if path.name != "config.yaml":
            changes.append(f"solution/{path.name}")
            continue
        fixed = config.flatten(_yaml.load_file(path))
        changes += [f"{key} {shipped.get(key)!r} -> {fixed[key]!r}" for key in fixed
                    if shipped.get(key) != fixed[key]]
    return "; ".join(changes) or "the solution's files"


def root_cause(scenario: Scenario) -> str:
    """The explanation's first paragraph (its root cause), as one line."""
    from .render import unfold

    return unfold(scenario.explanation).split("\n\n")[0].removeprefix("Root cause: ")


def run(args: argparse.Namespace) -> int:
    from ..catalog import get
    from ..harness import candidate
    from ..verification import verify
    from . import render

    scenario = get(TUTORIAL)
    out = render.console()
    out.print(f"[bold]The tutorial[/] ({scenario.id}): a scenario made for this demo, so its "
              "fix is shown below. The catalog's scenarios (`sandbox list`) show theirs only "
              "when you ask (`sandbox hint`, `sandbox solution`).\n")
    out.print(f"[bold]{scenario.title}[/]\n{render.unfold(scenario.brief)}\n")
    out.print("[bold]1. The shipped pipeline[/]")
    with render.progress(scenario.criteria.max_steps) as on_event:
        broken = verify(scenario, candidate.make(scenario), device=args.device,
                        logdir=args.logdir, on_event=on_event)
    render.verdict(broken, scenario, out)
    out.print(f"\n[bold]2. The reference fix[/] ({render.safe(fix_summary(scenario))})")
    with render.progress(scenario.criteria.max_steps) as on_event:
        fixed = verify(scenario, candidate.make(scenario, solution=True), device=args.device,
                       logdir=args.logdir, on_event=on_event)
    render.verdict(fixed, scenario, out)
    out.print(f"\n[bold]Why it broke[/]: {render.safe(root_cause(scenario))}")
    # the path and the command on lines of their own, never broken (see render.paths)
    out.print(f"\nOpen {render.safe(fixed.png)} for both curves side by side,", soft_wrap=True)
    out.print(f"or run `tensorboard --logdir {render.safe(args.logdir / scenario.id)}` to "
              "overlay them.", soft_wrap=True)
    out.print("That was the tutorial. Next: `sandbox list` for the catalog, `sandbox next` "
              "to start the easiest scenario you have not solved, or `sandbox drill` to fix "
              "some against the clock.")
    return EXIT_PASS if (not broken.passed and fixed.passed) else EXIT_FAIL
