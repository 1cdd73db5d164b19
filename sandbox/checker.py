"""``sandbox check DIR``: is a scenario folder a fair challenge?

Small ``check_*`` functions, each returning the problems it saw as sentences that say
what was observed and the likely cause; one orchestrator collects them all. The static
checks run first and need no torch; the dynamic ones run the scenario, every candidate
in one pool of processes: the shipped pipeline must fail on every seed, the reference
solution pass on every seed, every decoy fail on every seed (on the criteria it names),
every alternative pass on every seed, and each documented symptom must show in the
broken run's telemetry. The runs also renew or check ``reference.json``. The test suite
runs the same functions over the whole catalog.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import _yaml, config, quiz, variants
from . import reference as references
from .catalog import Scenario, editable_problems, load_scenario
from .diagnosis import SYMPTOMS
from .errors import CandidateError, ConfigError
from .harness import candidate
from .reference import Reference
from .variants import Variant
from .verification import EventFn, Verification, conclude, execute

MAX_DIFF_LINES = 20
GIVEAWAYS = re.compile(r"\b(bug|buggy|todo|fixme|hack|xxx|wrong|broken)\b", re.IGNORECASE)


@dataclass
class CheckReport:
    scenario: str
    problems: list[str] = field(default_factory=list)
    broken: Verification | None = None
    solution: Verification | None = None
    decoys: dict[str, Verification] = field(default_factory=dict)
    alternatives: dict[str, Verification] = field(default_factory=dict)
    reference: Reference | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def check_solution_diff(scenario: Scenario) -> list[str]:
    """The reference fix is a focused change, not a rewrite."""
    changed = solution_diff_lines(scenario)
    if changed > MAX_DIFF_LINES:
        return [f"the solution changes {changed} lines of the shipped files (at most "
                f"{MAX_DIFF_LINES}): a reference fix should be a focused change"]
    if changed == 0:
        return ["the solution's files are identical to the shipped ones"]
    return []


def solution_diff_lines(scenario: Scenario) -> int:
    """Lines added or removed by the solution, comments and blank lines not counted."""
    total = 0
    for fixed in sorted(p for p in scenario.solution_dir.iterdir() if p.is_file()):
        shipped = scenario.path / fixed.name
        before = _code_lines(shipped) if shipped.is_file() else []
        diff = difflib.unified_diff(before, _code_lines(fixed), lineterm="", n=0)
        total += sum(1 for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---"))
    return total


def _code_lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ln for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def check_no_giveaways(scenario: Scenario) -> list[str]:
    """Nothing in the broken files points at the bug (rustlings' TODOs are wrong here)."""
    problems = []
    for path in (scenario.pipeline_path, scenario.config_path):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if match := GIVEAWAYS.search(line):
                problems.append(f"{path.name}:{number} says '{match.group(0)}', which points "
                                "the user at the bug")
    return problems


def check_config_rules(scenario: Scenario) -> list[str]:
    """Locks, bounds and choices name real keys, and the solution respects the locks."""
    flat = config.flatten(_yaml.load_file(scenario.config_path))
    problems = [f"locked key '{k}' is not in config.yaml" for k in scenario.locked
                if not any(f == k or f.startswith(k + ".") for f in flat)]
    problems += [f"bounds name '{k}', which is not in config.yaml" for k in scenario.bounds
                 if k not in flat]
    problems += [f"choices name '{k}', which is not in config.yaml" for k in scenario.choices
                 if k not in flat]
    if "data" not in _yaml.load_file(scenario.config_path):
        problems.append("config.yaml has no 'data' section for the harness to build data from")
    try:
        candidate.make(scenario, solution=True)
    except (ConfigError, CandidateError) as exc:
        problems.append(f"the solution is refused: {exc}")
    return problems


def check_editable(scenario: Scenario) -> list[str]:
    """Each editable entry is a plain file name in the scenario folder: ``start`` copies
    them into the workspace as named, so ``../x`` or a link would reach outside it. The
    loader refuses such metadata; this catches a Scenario built in code, or a folder
    changed since it was loaded.
    """
    return editable_problems(scenario.editable, scenario.path)


def check_pipeline(scenario: Scenario) -> list[str]:
    try:
        candidate.check_pipeline_file(scenario.pipeline_path)
    except CandidateError as exc:
        return [str(exc)]
    return []


def check_variants_run(scenario: Scenario) -> list[str]:
    """Every decoy and alternative is a candidate the rules accept (a decoy the config
    check refuses proves nothing about the verdict).
    """
    problems = []
    for variant in variants.variants(scenario, "decoy") + variants.variants(scenario,
                                                                            "alternative"):
        try:
            candidate.make(scenario, variant=variant.path)
        except (ConfigError, CandidateError) as exc:
            problems.append(f"{variant.kind} '{variant.name}' is refused: {exc}")
    return problems


def check_quiz(scenario: Scenario) -> list[str]:
    """``quiz.yaml`` is there (a tutorial needs none), well formed, and every run it asks
    about is one the scenario's rules accept.
    """
    path = quiz.quiz_path(scenario)
    if quiz.LEFT_OUT in scenario.tags:
        return []
    if not path.is_file():
        return [f"the folder has no {quiz.QUIZ_FILE}, so `sandbox quiz` leaves the scenario "
                f"out: write at least {quiz.MIN_QUESTIONS} questions on its curves (the format "
                "is in sandbox/quiz.py)"]
    try:
        found = quiz.problems(_yaml.load_file(path), scenario)
    except ConfigError as exc:  # unreadable, or not YAML: the message names the file
        return [str(exc)]
    if found:
        return [f"{path.name}: {problem}" for problem in found]
    loaded = quiz.load(scenario)
    problems = []
    for run in loaded.runs[1:]:
        try:
            quiz.candidate(scenario, run)
        except (ConfigError, CandidateError) as exc:
            if not (run.decoy and _refused(scenario, scenario.decoys_dir / run.decoy)):
                problems.append(f"{path.name}: run '{run.name}' is refused: {exc}")
    return problems  # a refused decoy is reported once, by check_variants_run


def _refused(scenario: Scenario, variant: Path) -> bool:
    try:
        candidate.make(scenario, variant=variant)
    except (ConfigError, CandidateError):
        return True
    return False


def static_problems(scenario: Scenario) -> list[str]:
    return [*check_editable(scenario), *check_pipeline(scenario), *check_config_rules(scenario),
            *check_solution_diff(scenario), *check_no_giveaways(scenario),
            *variants.problems(scenario), *check_variants_run(scenario),
            *check_quiz(scenario)]


def check_broken_fails(outcome: Verification) -> list[str]:
    return [f"the shipped pipeline passes on seed {s.seed}; it must fail on every seed"
            for s in outcome.seeds if s.passed]


def check_solution_passes(outcome: Verification) -> list[str]:
    problems = []
    for seed in outcome.seeds:
        if not seed.passed:
            failed = "; ".join(f"{c.name}: {c.measured} (required {c.required})"
                               for c in seed.checks if not c.passed)
            problems.append(f"the solution fails on seed {seed.seed}: {failed}")
    return problems


def check_symptoms_show(scenario: Scenario, outcome: Verification) -> list[str]:
    """The diagnoser names each documented symptom in every broken seed's logs."""
    problems = []
    for seed in outcome.seeds:
        named = {f.symptom for f in seed.findings}
        for symptom in scenario.symptom_ids:
            if symptom not in SYMPTOMS:
                problems.append(f"symptom '{symptom}' is not in the diagnoser's vocabulary "
                                f"({', '.join(SYMPTOMS)})")
            elif symptom not in named:
                problems.append(f"the diagnoser does not name '{symptom}' in the broken run, "
                                f"seed {seed.seed} (it names: {', '.join(named) or 'nothing'})")
    return list(dict.fromkeys(problems))


def check_solution_is_healthy(outcome: Verification) -> list[str]:
    """The fixed run's curves show nothing for the diagnoser to name."""
    return [f"the diagnoser names '{f.symptom}' in the reference solution, seed {seed.seed}: "
            f"{f.evidence}" for seed in outcome.seeds for f in seed.findings]


def check_decoy_fails(variant: Variant, outcome: Verification) -> list[str]:
    """A decoy fails on every seed, on the criteria it says it fails."""
    problems = []
    for seed in outcome.seeds:
        if seed.passed:
            problems.append(f"decoy '{variant.name}' passes on seed {seed.seed}; it must fail "
                            f"({variant.reason})")
            continue
        failed = {c.name for c in seed.checks if not c.passed}
        missing = [name for name in variant.fails if name not in failed]
        if missing:
            problems.append(f"decoy '{variant.name}' does not fail {', '.join(missing)} on seed "
                            f"{seed.seed} (it fails: {', '.join(sorted(failed))})")
    return problems


def check_alternative_passes(variant: Variant, outcome: Verification) -> list[str]:
    return [f"alternative '{variant.name}' {p.removeprefix('the solution ')}"
            for p in check_solution_passes(outcome)]


def check_reference_file(scenario: Scenario, fresh: Reference, write: bool) -> list[str]:
    if write:
        references.save(scenario, fresh)
        return []
    saved, why = references.load(scenario)
    if saved is None:
        return [str(why)]
    return [f"reference.json is stale: {p} (`sandbox check {scenario.path} --write-reference` "
            "renews it)" for p in references.differences(saved, fresh)]


def check_scenario(folder: Path, *, logdir: Path = Path("runs"), device: str = "auto",
                   on_event: EventFn | None = None, write_reference: bool = False) -> CheckReport:
    """Every check, static then dynamic; all problems collected into one report."""
    scenario = load_scenario(folder)
    report = CheckReport(scenario.id, static_problems(scenario))
    if report.problems:
        return report
    decoys = variants.variants(scenario, "decoy")
    alternatives = variants.variants(scenario, "alternative")
    candidates = [candidate.make(scenario), candidate.make(scenario, solution=True),
                  *(candidate.make(scenario, variant=v.path) for v in decoys + alternatives)]
    done = execute(scenario, candidates, device=device, logdir=logdir, on_event=on_event,
                   with_baseline=False)
    done.baseline = done.results[0][:1]
    fresh = references.build(scenario, done.results[0], done.results[1])
    report.reference = fresh
    report.problems += check_reference_file(scenario, fresh, write_reference)
    try:
        judged = [conclude(scenario, c, g, r, done, (fresh, None), plot=i < 2)
                  for i, (c, g, r) in enumerate(zip(candidates, done.groups, done.results,
                                                    strict=True))]
    finally:
        done.close()
    report.broken, report.solution = judged[0], judged[1]
    report.decoys = {v.name: o for v, o in zip(decoys, judged[2:], strict=False)}
    report.alternatives = {v.name: o for v, o in zip(alternatives, judged[2 + len(decoys):],
                                                     strict=True)}
    report.problems += check_broken_fails(report.broken)
    report.problems += check_solution_passes(report.solution)
    report.problems += check_symptoms_show(scenario, report.broken)
    report.problems += check_solution_is_healthy(report.solution)
    for variant in decoys:
        report.problems += check_decoy_fails(variant, report.decoys[variant.name])
    for variant in alternatives:
        report.problems += check_alternative_passes(variant, report.alternatives[variant.name])
    return report


def margins(report: CheckReport) -> list[dict[str, object]]:
    """For each fix the check ran: per criterion, the measured value on every seed (seed
    order, `` / `` between them), so authors see how close the closest one came.
    """
    rows = []
    runs = [("solution", "reference", report.solution)]
    runs += [("alternative", n, o) for n, o in report.alternatives.items()]
    runs += [("decoy", n, o) for n, o in report.decoys.items()]
    runs.insert(0, ("shipped", "shipped", report.broken))
    for kind, name, outcome in runs:
        if outcome is None:
            continue
        cells = {}
        for index, check in enumerate(outcome.seeds[0].checks):
            per_seed = [s.checks[index] for s in outcome.seeds]
            cells[check.name] = {"passed": all(c.passed for c in per_seed),
                                 "measured": " / ".join(c.measured for c in per_seed),
                                 "required": per_seed[0].required}
        rows.append({"kind": kind, "name": name, "passed": outcome.passed, "criteria": cells})
    return rows


DECIDING = ("train loss", "honest validation", "budget", "capacity")


def margin_table(report: CheckReport) -> list[str]:
    """:func:`margins` as a Markdown table: for a fix that passes, the criteria that decide
    it (the test metric, training, honest validation, the budget and the root-cause
    criteria); for one that fails, the criteria it failed.
    """
    from .criteria import REVEALING
    lines = [f"### {report.scenario}" + ("" if report.ok else " (check found problems)"),
             "", "| fix | verdict | deciding criteria (seed by seed) |", "| --- | --- | --- |"]
    for row in margins(report):
        cells = row["criteria"]
        deciding = [n for n in cells if n.startswith("test ") or n in DECIDING
                    or n in REVEALING]
        shown = [n for n in deciding if row["passed"] or not cells[n]["passed"]]
        text = "; ".join(f"{n}: {cells[n]['measured']}" for n in shown)
        lines.append(f"| {row['kind']} {row['name']} | "
                     f"{'pass' if row['passed'] else 'fail'} | {text} |")
    return [*lines, ""]
