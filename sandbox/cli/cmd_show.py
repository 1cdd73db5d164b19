"""sandbox show ID: the brief and the rules of one scenario (never imports torch)."""

from __future__ import annotations

import argparse
import json

from .common import add_scenarios, add_subcommand


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = add_subcommand(commands, "show", "Show a scenario's brief, symptoms and rules.",
                            "  sandbox show exploding-lr-v2\n  sandbox show exploding-lr --json")
    parser.add_argument("scenario", metavar="ID")
    parser.add_argument("--json", action="store_true", help="print the metadata as JSON "
                        "(without hints and explanation)")
    add_scenarios(parser)
    parser.set_defaults(handler=run)


def catalog_changed(scenario) -> str | None:
    """Why the catalog copy of a scenario is not the one its reference was measured on
    (someone edited the shipped files), or None. Verification would refuse such a copy's
    root-cause checks; ``show`` says so before anyone spends time on it.
    """
    from ..reference import FILE, fingerprint
    try:
        recorded = json.loads((scenario.path / FILE).read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None  # no reference (a scenario being written): `sandbox check` says so
    if recorded is None or recorded == fingerprint(scenario):
        return None
    return (f"the files in {scenario.path} differ from those the scenario was measured on "
            f"({FILE} has fingerprint {recorded}, the files now give {fingerprint(scenario)}): "
            "someone edited the catalog copy. Restore it (`git checkout -- "
            f"{scenario.path}` in a clone) and make your changes in the workspace instead.")


def run(args: argparse.Namespace) -> int:
    from ..catalog import get

    s = get(args.scenario, args.scenarios)
    c = s.criteria
    if args.json:
        print(json.dumps({**s.summary(), "brief": s.brief, "symptoms": list(s.symptoms),
                          "editable": list(s.editable), "locked": list(s.locked),
                          "criteria": c.__dict__, "seeds": list(s.seeds),
                          "catalog_edited": catalog_changed(s)}, indent=2))
        return 0
    from ..home import ROOT_CAUSE_NOTE, Workspace, home_dir
    from .render import console, unfold

    out = console()
    out.print(f"[bold]{s.title}[/]  ({s.id}, difficulty {s.difficulty}/3; {', '.join(s.tags)})\n")
    out.print(unfold(s.brief) + "\n")
    out.print("[bold]What you will see[/]")
    for symptom in s.symptoms:
        out.print(f"  - {symptom['text']}")
    out.print(f"\n[bold]You may edit[/] {', '.join(s.editable)}, in your own copy: "
              f"`sandbox start {s.id}` puts them in {Workspace(s, home_dir()).root}/. "
              f"The files in {s.path} are the catalog's; leave them as they are.",
              highlight=False)
    changed = catalog_changed(s)
    if changed:
        out.print(f"[yellow]warning:[/] {changed}", highlight=False)
    if s.locked:
        out.print(f"[bold]Locked[/] {', '.join(s.locked)}")
    out.print(f"\n[bold]To pass[/], on every seed {list(s.seeds)}: loss stays finite; final "
              f"train loss <= {c.train_loss_max:g}; hidden-test {c.test_metric.label} "
              f"{c.test_required()} (scored through predict() in batches of "
              f"{c.serve_batch_size}); validation within {c.val_tolerance:g} of the test; "
              f"at most {c.max_samples} training samples and {c.max_steps} optimizer steps; "
              f"{c.time_limit_s:g} s per seed. {ROOT_CAUSE_NOTE}")
    out.print(f"\nNext: `sandbox start {s.id}` for a workspace copy to fix against the clock, "
              f"or `sandbox run {s.id}` to see it fail and `sandbox verify {s.id} --set "
              "key=value` (or `--config FILE`, `--pipeline FILE`) to try a fix.")
    return 0
