"""Quiz questions: which bug made these curves, and what fixes it?

Each scenario states its root cause and its fix in one line (``quiz:`` in its metadata).
The wrong choices are drawn from the rest of the catalog, so they are real bugs someone
could suspect: two from other scenarios, the rest from the diagnoser's likely causes and
fixes for symptom families that neither this scenario nor those two show (a family
groups symptoms whose causes overlap, so a distractor is never a rewording of the right
answer or of another choice).
"""

from __future__ import annotations

import difflib
import random
from dataclasses import dataclass

from .catalog import Scenario
from .diagnosis.advice import SYMPTOMS

CHOICES = 4
ALIKE = 0.6  # difflib ratio above which two choices read as the same answer
FAMILIES = {
    "diverging": "optimisation", "large-updates": "optimisation",
    "large-early-updates": "optimisation",
    "oscillating": "optimisation", "exploding-gradients": "optimisation",
    "dead-units": "optimisation",
    "not-learning": "gradient flow", "vanishing-gradients": "gradient flow",
    "overfitting": "generalisation",
    "eval-batch-dependence": "evaluation", "optimistic-validation": "evaluation",
}


@dataclass(frozen=True)
class Question:
    kind: str  # "cause" or "fix"
    prompt: str
    choices: tuple[str, ...]
    answer: int  # index into choices

    @property
    def correct(self) -> str:
        return self.choices[self.answer]


def quizzable(scenarios: list[Scenario]) -> list[Scenario]:
    return [s for s in scenarios if s.quiz.get("cause") and s.quiz.get("fix")]


def questions(scenario: Scenario, catalog: list[Scenario],
              rng: random.Random) -> tuple[Question, Question]:
    """The cause question, then the fix question, for one scenario's broken run."""
    return (_question(scenario, catalog, "cause", rng,
                      "What is the most likely root cause?"),
            _question(scenario, catalog, "fix", rng, "Which change fixes it?"))


def _question(scenario: Scenario, catalog: list[Scenario], kind: str, rng: random.Random,
              prompt: str) -> Question:
    right = scenario.quiz[kind]
    others = [s for s in quizzable(catalog) if s.id != scenario.id]
    rng.shuffle(others)
    used = {_family(sid) for s in (scenario, *others[:2]) for sid in s.symptom_ids}
    advice = [text for sid, adv in SYMPTOMS.items() if _family(sid) not in used
              for text in (adv.causes if kind == "cause" else adv.fixes)]
    rng.shuffle(advice)
    wrong: list[str] = []
    for text in [s.quiz[kind] for s in others[:2]] + advice + [s.quiz[kind] for s in others[2:]]:
        if len(wrong) == CHOICES - 1:
            break
        if not any(_alike(text, taken) for taken in (right, *wrong)):
            wrong.append(text)
    choices = [right, *wrong[:CHOICES - 1]]
    rng.shuffle(choices)
    return Question(kind, prompt, tuple(choices), choices.index(right))


def _family(symptom: str) -> str:
    return FAMILIES.get(symptom, symptom)


def _alike(a: str, b: str) -> bool:
    matcher = difflib.SequenceMatcher(None, a.lower(), b.lower())
    return matcher.quick_ratio() > ALIKE and matcher.ratio() > ALIKE  # an upper bound first
