"""Quiz questions on a broken run's curves, written for each scenario in its ``quiz.yaml``.

A quiz file names the runs its questions are asked on and the questions themselves::

    runs:                        # besides "shipped", the catalog's broken run (always there)
      lr-0.3:
        about: the same pipeline at another learning rate that is still far too high
        set: {optimizer.lr: 0.3}   # config overrides that keep the bug (the scenario's
        seed: 11                   # rules apply), a seed, or a decoy: a wrong fix from
        decoy: clip-every-step     # decoys/ whose curves still show the bug
    questions:
      - kind: symptom              # symptom (the curves -> what they show), check (what
        prompt: What do these curves show?   # to check first), cause, fix
        runs: [shipped, lr-0.3]    # optional: the runs it is true of (default: all)
        choices:                   # exactly four; one has right: true
          - text: the loss turns into NaN within the first epoch
            why: one sentence, shown when it is picked (and for the right one, always)
            right: true

A run other than ``shipped`` is trained on demand on one seed (a few seconds) into the
quiz's own folder, never into the user's ``runs/<scenario>/``: the folder, the PNG and
the progress line name no scenario. Every question's wrong choices are written for its
curves, so each one gets an explanation of why it does not fit them.

The one-line ``quiz:`` block in ``scenario.yaml`` is no longer read: ``quiz.yaml``
replaces it, and a scenario without one is left out of the quiz (``sandbox check``
reports it). Nothing here imports torch until a run is trained.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import _yaml
from .catalog import Scenario
from .errors import ConfigError, ScenarioFormatError

QUIZ_FILE = "quiz.yaml"
KINDS = {"symptom": "what the curves show", "check": "what to check first",
         "cause": "the root cause", "fix": "the fix"}
CHOICES = 4
MIN_QUESTIONS = 3  # asked on every run
MIN_KINDS = 2
SHIPPED = "shipped"
LEFT_OUT = "tutorial"  # a scenario with this tag is practice for the tool, not a quiz
MAX_TEXT, MAX_WHY = 160, 400  # a choice fits on a line or two; its explanation is a sentence
RUN_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")
# A fix is a change to the code or config. A choice that starts like this is a step of
# diagnosis, which belongs in a "check" question (CATALOG.md: never a diagnostic step).
DIAGNOSTIC = re.compile(r"^(check|inspect|log|plot|print|look|monitor|compare|measure|verify|"
                        r"examine|visuali[sz]e|track|watch|debug|investigate|profile)\b", re.I)
TOP_KEYS, RUN_KEYS = {"runs", "questions"}, {"about", "set", "seed", "decoy"}
QUESTION_KEYS, CHOICE_KEYS = {"kind", "prompt", "runs", "choices"}, {"text", "why", "right"}


@dataclass(frozen=True)
class Choice:
    text: str
    why: str  # why it is right, or why it is wrong for these curves


@dataclass(frozen=True)
class Question:
    kind: str
    prompt: str
    choices: tuple[Choice, ...]
    answer: int  # index into choices
    runs: tuple[str, ...] = ()  # the runs it is asked on; empty: every run

    @property
    def correct(self) -> Choice:
        return self.choices[self.answer]

    def shuffled(self, rng: random.Random) -> Question:
        order = list(range(len(self.choices)))
        rng.shuffle(order)
        return replace(self, choices=tuple(self.choices[i] for i in order),
                       answer=order.index(self.answer))


@dataclass(frozen=True)
class QuizRun:
    """One set of curves the questions are asked on."""

    name: str
    about: str  # shown after the answers, with the scenario's name
    overrides: tuple[str, ...] = ()  # ``key=value``, as ``--set`` takes them
    seed: int | None = None  # None: the scenario's first seed
    decoy: str | None = None  # a folder in decoys/

    @property
    def is_shipped(self) -> bool:
        return self.name == SHIPPED


@dataclass(frozen=True)
class Quiz:
    path: Path
    runs: tuple[QuizRun, ...]  # "shipped" first
    questions: tuple[Question, ...]

    def run(self, name: str) -> QuizRun:
        return next(r for r in self.runs if r.name == name)

    def asked_on(self, run: str) -> list[Question]:
        """The questions for one run's curves, in the file's order."""
        return [q for q in self.questions if not q.runs or run in q.runs]


def quiz_path(scenario: Scenario) -> Path:
    return scenario.path / QUIZ_FILE


def quizzable(scenarios: list[Scenario]) -> list[Scenario]:
    """The scenarios the quiz asks about: those with a quiz file, tutorials left out."""
    return [s for s in scenarios if LEFT_OUT not in s.tags and quiz_path(s).is_file()]


def load(scenario: Scenario) -> Quiz:
    """The scenario's quiz; every problem of the file is collected into one error."""
    path = quiz_path(scenario)
    if not path.is_file():
        raise ScenarioFormatError(f"{path} does not exist: scenario {scenario.id} has no quiz.")
    try:
        data = _yaml.load_file(path)
    except ConfigError as exc:  # it names the file and the cause
        raise ScenarioFormatError(str(exc)) from None
    found = problems(data, scenario)
    if found:
        raise ScenarioFormatError(f"{path} has problems:\n  - " + "\n  - ".join(found))
    return _build(data, path)


def problems(data: Any, scenario: Scenario) -> list[str]:
    """Everything wrong with a quiz file's contents, as readable sentences."""
    if not isinstance(data, dict):
        return ["the quiz must be a mapping with 'questions' (and optionally 'runs')"]
    found = [f"unknown key '{k}' (known: runs, questions)" for k in data if k not in TOP_KEYS]
    runs = data.get("runs") or {}
    if not isinstance(runs, dict):
        found.append("'runs' must map run names to what each run changes")
        runs = {}
    for name, spec in runs.items():
        found += _run_problems(name, spec, scenario)
    questions = data.get("questions")
    if not isinstance(questions, list) or not questions:
        return [*found, "'questions' must be a non-empty list"]
    names = {SHIPPED, *runs}
    for n, question in enumerate(questions, 1):
        found += [f"question {n}: {p}" for p in _question_problems(question, names)]
    if found:
        return found
    quiz = _build(data, quiz_path(scenario))
    for run in quiz.runs:
        asked = quiz.asked_on(run.name)
        kinds = {q.kind for q in asked}
        if len(asked) < MIN_QUESTIONS or len(kinds) < MIN_KINDS:
            found.append(f"run '{run.name}' is asked {len(asked)} question(s) of "
                         f"{len(kinds)} kind(s); every run needs at least {MIN_QUESTIONS}, "
                         f"of at least {MIN_KINDS} kinds")
    return found


def _run_problems(name: Any, spec: Any, scenario: Scenario) -> list[str]:
    where = f"run {name!r}"
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or name == SHIPPED:
        return [f"{where}: a run name is lower-case letters, digits, '.', '_' or '-', and "
                f"not '{SHIPPED}' (the catalog's broken run is always there)"]
    if not isinstance(spec, dict):
        return [f"{where} must be a mapping with 'about' and any of set, seed, decoy"]
    found = [f"{where}: unknown key '{k}' (known: {', '.join(sorted(RUN_KEYS))})"
             for k in spec if k not in RUN_KEYS]
    if not _line(spec.get("about"), MAX_WHY):
        found.append(f"{where} needs 'about': one line saying what the run changes")
    if not (RUN_KEYS - {"about"}) & spec.keys():
        found.append(f"{where} changes nothing: give set, seed or decoy")
    overrides = spec.get("set", {})
    if not isinstance(overrides, dict) or not all(isinstance(k, str) for k in overrides):
        found.append(f"{where}: 'set' must map config keys to values, like "
                     "{optimizer.lr: 0.3}")
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
        found.append(f"{where}: 'seed' must be a whole number from 0 to {2 ** 32 - 1}")
    decoy = spec.get("decoy")
    if decoy is not None and not (isinstance(decoy, str) and re.fullmatch(r"[\w.-]+", decoy)
                                  and (scenario.decoys_dir / decoy).is_dir()):
        found.append(f"{where}: decoy {decoy!r} is not a folder in {scenario.decoys_dir}")
    return found


def _question_problems(question: Any, runs: set[str]) -> list[str]:
    if not isinstance(question, dict):
        return ["must be a mapping with kind, prompt and choices"]
    found = [f"unknown key '{k}' (known: {', '.join(sorted(QUESTION_KEYS))})"
             for k in question if k not in QUESTION_KEYS]
    kind = question.get("kind")
    if kind not in KINDS:
        found.append(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    if not _line(question.get("prompt"), MAX_TEXT):
        found.append(f"'prompt' must be one line of text under {MAX_TEXT} characters")
    asked_on = question.get("runs", [])
    if not isinstance(asked_on, list) or (not asked_on and "runs" in question):
        found.append("'runs' must be a non-empty list of run names")
    else:
        found += [f"run {r!r} is not 'shipped' or a run under 'runs'" for r in asked_on
                  if r not in runs]
    choices = question.get("choices")
    if not isinstance(choices, list) or len(choices) != CHOICES:
        return [*found, f"'choices' must be a list of exactly {CHOICES}"]
    seen: set[str] = set()
    for n, choice in enumerate(choices, 1):
        if not isinstance(choice, dict):
            found.append(f"choice {n} must be a mapping with text and why")
            continue
        found += [f"choice {n}: unknown key '{k}' (known: right, text, why)" for k in choice
                  if k not in CHOICE_KEYS]
        text = _line(choice.get("text"), MAX_TEXT)
        if not text:
            found.append(f"choice {n} needs 'text': one line under {MAX_TEXT} characters")
        elif text.lower() in seen:
            found.append(f"choice {n} repeats another choice's text: {text!r}")
        else:
            seen.add(text.lower())
        if not _line(choice.get("why"), MAX_WHY):
            found.append(f"choice {n} needs 'why': one sentence under {MAX_WHY} characters "
                         "saying why it is right or wrong for these curves")
        if choice.get("right", False) not in (True, False):
            found.append(f"choice {n}: 'right' is true or left out")
        if kind == "fix" and text and DIAGNOSTIC.match(text):
            found.append(f"choice {n} is a diagnostic step, not a fix: {text!r} (ask it in a "
                         "'check' question)")
    right = sum(isinstance(c, dict) and c.get("right") is True for c in choices)
    if right != 1:
        found.append(f"exactly one choice must have right: true, not {right}")
    return found


def _line(value: Any, limit: int) -> str:
    """The text as one line, or '' when it is not text or is too long."""
    text = " ".join(value.split()) if isinstance(value, str) else ""
    return text if len(text) < limit else ""


def _build(data: dict[str, Any], path: Path) -> Quiz:
    runs = [QuizRun(SHIPPED, "the scenario's broken pipeline as shipped")]
    for name, spec in (data.get("runs") or {}).items():
        runs.append(QuizRun(name, _line(spec["about"], MAX_WHY),
                            tuple(f"{k}={json.dumps(v)}" for k, v in
                                  (spec.get("set") or {}).items()),
                            spec.get("seed"), spec.get("decoy")))
    questions = []
    for q in data["questions"]:
        choices = tuple(Choice(_line(c["text"], MAX_TEXT), _line(c["why"], MAX_WHY))
                        for c in q["choices"])
        answer = next(i for i, c in enumerate(q["choices"]) if c.get("right") is True)
        questions.append(Question(q["kind"], _line(q["prompt"], MAX_TEXT), choices, answer,
                                  tuple(q.get("runs", ()))))
    return Quiz(path, tuple(runs), tuple(questions))


# Which run, which questions --------------------------------------------------------

@dataclass(frozen=True)
class Round:
    """One scenario's part of a quiz: the run shown and the questions asked on it."""

    scenario: Scenario
    run: QuizRun
    questions: tuple[Question, ...]  # choices in the order shown


def plan(scenarios: list[Scenario], history: Any = None, *, count: int,
         difficulty: int | None = None, tag: str | None = None,
         rng: random.Random) -> list[Round]:
    """Up to ``count`` quizzable scenarios (unsolved ones first when ``history`` is
    given, see :func:`sandbox.drills.pick`), in random order; for each one of its runs
    (the catalog's or a variant, at random) and its questions, the choices shuffled.
    Only the picked scenarios' quiz files are loaded (and checked).
    """
    from .drills import pick

    candidates = quizzable(scenarios)
    if not candidates:
        raise ScenarioFormatError(f"no scenario has a {QUIZ_FILE} (the quiz's questions).")
    picked = pick(candidates, history, count=count, difficulty=difficulty, tag=tag, rng=rng)
    rng.shuffle(picked)
    rounds = []
    for scenario in picked:
        quiz = load(scenario)
        run = rng.choice(quiz.runs)
        rounds.append(Round(scenario, run, tuple(q.shuffled(rng)
                                                 for q in quiz.asked_on(run.name))))
    return rounds


# Running a variant -----------------------------------------------------------------

def candidate(scenario: Scenario, run: QuizRun):
    """The run as a candidate the scenario's rules accept (ConfigError when they refuse)."""
    from .harness import candidate as candidates

    decoy = scenario.decoys_dir / run.decoy if run.decoy else None
    return candidates.make(scenario, variant=decoy, overrides=run.overrides)


def train(scenario: Scenario, run: QuizRun, folder: Path, device: str = "auto",
          on_event: Callable | None = None) -> dict[str, Any]:
    """Train ``run`` on one seed, its event files in ``folder``, and score it on a hidden
    split as verification does (the PNG shows the test score). No verdict: the quiz only
    shows the curves.
    """
    from . import scoring
    from .harness import pool
    from .harness.job import Job
    from .harness.protocol import MalformedMessage
    from .verification import HiddenSplits, hidden_salt

    chosen = candidate(scenario, run)
    seed = run.seed if run.seed is not None else scenario.seeds[0]
    criteria = scenario.criteria
    folder.mkdir(parents=True, exist_ok=True)
    job = Job(scenario.id, seed, str(chosen.pipeline), chosen.config, device,
              str(folder.resolve()), criteria.serve_batch_size, criteria.memory_limit_mb,
              max_steps=criteria.max_steps, max_samples=criteria.max_samples)
    hidden = HiddenSplits(hidden_salt()[0])
    try:
        result = pool.run_jobs([job], criteria.time_limit_s, on_event, serve=hidden.serve)[0]
    finally:
        for served in hidden.served:
            Path(served).unlink(missing_ok=True)
    if result["status"] == "bad-device":
        raise ConfigError(result.get("error") or f"--device {device} is not available")
    dev, test = hidden.get(job.config["data"], seed)
    with contextlib.suppress(MalformedMessage):  # the curves are what the quiz shows
        result.update(scoring.score(result, dev, test, criteria.metric))
    return result
