"""The quiz: every scenario's quiz.yaml, the loader's refusals, the check, and `sandbox quiz`
through the real CLI with answers on stdin (one short real run, of a variant)."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sandbox import catalog, checker, quiz
from sandbox.errors import ScenarioFormatError
from sandbox.harness.candidate import fingerprint

from .conftest import CATALOG, FIXTURE_SCENARIOS, ROOT

QUIZZED = sorted(s.id for s in quiz.quizzable(list(CATALOG.values())))
TINY = ["--scenarios", str(FIXTURE_SCENARIOS)]


def test_every_scenario_but_a_tutorial_has_a_quiz_file():
    files = sorted(ROOT.glob("scenarios/*/quiz.yaml"))
    scenarios = [s for s in CATALOG.values() if quiz.LEFT_OUT not in s.tags]
    assert len(files) == len(scenarios) == len(QUIZZED) >= 25
    assert {f.parent.name for f in files} == set(QUIZZED)


@pytest.mark.parametrize("scenario_id", QUIZZED)
def test_a_scenario_quiz_is_complete_on_every_run(scenario_id):
    scenario = CATALOG[scenario_id]
    loaded = quiz.load(scenario)
    assert checker.check_quiz(scenario) == []  # every variant is a run the rules accept
    assert len(loaded.runs) >= 2, "questions on curves from variants, not only the catalog's"
    for run in loaded.runs:
        asked = loaded.asked_on(run.name)
        assert len(asked) >= 3 and len({q.kind for q in asked}) >= 2, run.name
    for question in loaded.questions:
        assert len(question.choices) == quiz.CHOICES
        texts = [c.text.lower() for c in question.choices]
        assert len(set(texts)) == len(texts), question.prompt
        assert all(c.why.endswith(".") for c in question.choices)  # a sentence each
        assert question.correct in question.choices
        if question.kind == "fix":
            assert not any(quiz.DIAGNOSTIC.match(c.text) for c in question.choices)
    raw = yaml.safe_load(quiz.quiz_path(scenario).read_text())
    assert all(sum(c.get("right", False) is True for c in q["choices"]) == 1
               for q in raw["questions"])


def test_wrong_choices_are_written_for_the_question_not_taken_from_other_scenarios():
    rights = {}
    for sid in QUIZZED:
        for q in quiz.load(CATALOG[sid]).questions:
            rights.setdefault((q.kind, q.correct.text.lower()), set()).add(sid)
    for sid in QUIZZED:
        for q in quiz.load(CATALOG[sid]).questions:
            for i, choice in enumerate(q.choices):
                owners = rights.get((q.kind, choice.text.lower()), set()) - {sid}
                assert i == q.answer or not owners, (sid, choice.text, owners)


def test_the_length_of_a_choice_does_not_give_the_answer_away():
    """"Pick the longest" (or the shortest) must not beat guessing by much: the right
    answer's rank by length is spread over the four places."""
    questions = [q for sid in QUIZZED for q in quiz.load(CATALOG[sid]).questions]
    ranks = [sorted((len(c.text) for c in q.choices), reverse=True).index(
        len(q.correct.text)) for q in questions]
    assert all(ranks.count(r) <= 0.35 * len(questions) for r in range(quiz.CHOICES)), ranks


def test_shuffling_keeps_the_right_answer_and_the_explanations():
    question = quiz.load(CATALOG["exploding-lr-v2"]).questions[2]
    for seed in range(10):
        shuffled = question.shuffled(random.Random(seed))
        assert shuffled.correct == question.correct
        assert sorted(shuffled.choices, key=str) == sorted(question.choices, key=str)


def test_a_tutorial_is_left_out_of_the_quiz(tiny):
    meta = tiny / "scenario.yaml"
    meta.write_text(meta.read_text().replace("tags: [fixture]", "tags: [fixture, tutorial]"))
    scenario = catalog.load_scenario(tiny)
    assert quiz.quizzable([scenario]) == [] and checker.check_quiz(scenario) == []


def test_loading_every_quiz_does_not_import_torch():
    code = ("import sys; from sandbox import catalog, quiz; "
            "[quiz.load(s) for s in quiz.quizzable(list(catalog.discover().values()))]; "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


# A broken quiz file: each edit, and the problem the error names ------------------------

def _first_choice(data: dict) -> dict:
    return data["questions"][0]["choices"][0]


BROKEN = {
    "two right answers": (lambda d: d["questions"][0]["choices"][1].update(right=True),
                          "exactly one choice must have right: true, not 2"),
    "no right answer": (lambda d: _first_choice(d).pop("right"),
                        "exactly one choice must have right: true, not 0"),
    "a repeated choice": (lambda d: d["questions"][0]["choices"][2].update(
        text=_first_choice(d)["text"].upper()), "choice 3 repeats another choice's text"),
    "three choices": (lambda d: d["questions"][0]["choices"].pop(),
                      "'choices' must be a list of exactly 4"),
    "no explanation": (lambda d: d["questions"][1]["choices"][3].pop("why"),
                       "question 2: choice 4 needs 'why'"),
    "an unknown kind": (lambda d: d["questions"][0].update(kind="trivia"),
                        "kind 'trivia' is not one of symptom, check, cause, fix"),
    "a diagnostic step as a fix": (lambda d: d["questions"][2]["choices"][1].update(
        text="check the learning rate in TensorBoard"), "is a diagnostic step, not a fix"),
    "an unknown run": (lambda d: d["questions"][0].update(runs=["shipped", "nope"]),
                       "run 'nope' is not 'shipped' or a run under 'runs'"),
    "a missing decoy": (lambda d: d["runs"]["decoy-5x"].update(decoy="no-such-decoy"),
                        "run 'decoy-5x': decoy 'no-such-decoy' is not a folder"),
    "a run that changes nothing": (lambda d: d["runs"].update(same={"about": "nothing"}),
                                   "run 'same' changes nothing"),
    "too few questions on a run": (lambda d: d["questions"][1].update(runs=["slower"]),
                                   "run 'shipped' is asked 2 question(s)"),
    "an unknown key": (lambda d: d.update(hints=[]), "unknown key 'hints'"),
}


@pytest.mark.parametrize("edit", sorted(BROKEN))
def test_a_bad_quiz_file_is_a_format_error_naming_the_file_and_the_problem(tiny, edit):
    path = tiny / quiz.QUIZ_FILE
    data = yaml.safe_load(path.read_text())
    change, message = BROKEN[edit]
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    scenario = catalog.load_scenario(tiny)  # the scenario itself still loads (and lists)
    with pytest.raises(ScenarioFormatError) as error:
        quiz.load(scenario)
    assert str(path) in str(error.value) and message in str(error.value)
    assert any(message in p for p in checker.static_problems(scenario))


def test_a_quiz_file_that_is_not_yaml_names_the_file(tiny):
    path = tiny / quiz.QUIZ_FILE
    path.write_text("questions: [unclosed\n")
    with pytest.raises(ScenarioFormatError, match=re.escape(f"{path} is not valid YAML")):
        quiz.load(catalog.load_scenario(tiny))


def test_the_check_reports_a_missing_quiz_and_a_run_the_rules_refuse(tiny):
    path = tiny / quiz.QUIZ_FILE
    data = yaml.safe_load(path.read_text())
    data["runs"]["slower"]["set"] = {"train.epochs": 30}  # locked
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    refused = checker.check_quiz(catalog.load_scenario(tiny))
    assert len(refused) == 1 and "run 'slower' is refused" in refused[0]
    assert "train.epochs" in refused[0]
    path.unlink()
    missing = checker.static_problems(catalog.load_scenario(tiny))
    assert any("the folder has no quiz.yaml" in p for p in missing)


# The CLI ---------------------------------------------------------------------------

def _seed_for(run_name: str) -> tuple[int, quiz.Round]:
    """A --seed whose one-question-set quiz on the fixture shows ``run_name``: the CLI
    plans with the same function and the same random sequence."""
    scenarios = list(catalog.discover([FIXTURE_SCENARIOS]).values())
    for seed in range(200):
        (planned,) = quiz.plan(scenarios, None, count=1, tag="fixture",
                               rng=random.Random(seed))
        if planned.run.name == run_name:
            return seed, planned
    raise AssertionError(f"no seed below 200 shows run {run_name}")


def _answers(planned: quiz.Round) -> tuple[str, list[tuple[quiz.Question, int]]]:
    """The first answer wrong, the others right."""
    picks = [(q, (q.answer + 1) % len(q.choices) if i == 0 else q.answer)
             for i, q in enumerate(planned.questions)]
    return "".join(f"{p + 1}\n" for _, p in picks), picks


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.slow
def test_the_quiz_trains_a_variant_apart_explains_each_answer_and_records_the_score(tmp_path):
    home, logdir = tmp_path / "home", tmp_path / "runs"
    seed, planned = _seed_for("slower")
    stdin, picks = _answers(planned)
    done = _cli("quiz", "--count", "1", "--tag", "fixture", "--seed", str(seed), "--device",
                "cpu", *TINY, home=home, logdir=logdir, stdin=stdin)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "Training the run to read" in out                       # the variant, run now
    wrong_question, wrong = picks[0]
    assert f"Not quite. {wrong_question.choices[wrong].why}" in out
    assert f"The answer is {wrong_question.answer + 1}) {wrong_question.correct.text}" in out
    assert all(f"Right. {q.correct.why}" in out for q, _ in picks[1:])
    assert f"Score: {len(picks) - 1} of {len(picks)}" in out
    assert "these curves: the same pipeline at half its learning rate" in out
    assert not logdir.exists()                                      # nothing next to attempts
    png = Path(re.search(r"curves: (\S+\.png)", out).group(1))
    assert png.is_file() and png.is_relative_to(home / "quiz")
    written = _files(home / "quiz")
    assert any(p.name.startswith("events.out.tfevents") for p in written)  # the variant's logs
    assert not any("tiny" in str(p.relative_to(home)) for p in written)    # no giveaway
    numbers = json.loads(_cli("stats", "--json", *TINY, home=home, logdir=logdir).stdout)
    numbers = numbers["totals"]
    assert (numbers["quiz_answers"], numbers["quiz_correct"]) == (len(picks), len(picks) - 1)


def test_the_catalog_run_is_read_from_a_recorded_broken_run_without_writing_there(tmp_path):
    home, logdir = tmp_path / "home", tmp_path / "runs"
    _record_broken_run(logdir)
    before = [(p, p.stat().st_mtime_ns) for p in _files(logdir)]
    seed, planned = _seed_for(quiz.SHIPPED)
    stdin, picks = _answers(planned)
    done = _cli("quiz", "--count", "1", "--tag", "fixture", "--seed", str(seed), *TINY,
                home=home, logdir=logdir, stdin=stdin)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Training" not in done.stdout
    assert f"Score: {len(picks) - 1} of {len(picks)}" in done.stdout
    assert [(p, p.stat().st_mtime_ns) for p in _files(logdir)] == before
    assert (home / "quiz").is_dir()


def test_a_closed_stdin_ends_the_quiz_with_a_clear_error(tmp_path):
    home, logdir = tmp_path / "home", tmp_path / "runs"
    _record_broken_run(logdir)
    seed, _ = _seed_for(quiz.SHIPPED)
    done = _cli("quiz", "--count", "1", "--tag", "fixture", "--seed", str(seed), *TINY,
                home=home, logdir=logdir)
    assert done.returncode == 2 and "stdin is closed" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_broken_quiz_file_stops_the_quiz_with_an_error_naming_it(tmp_path):
    folder = tmp_path / "tiny-v1"
    shutil.copytree(FIXTURE_SCENARIOS / "tiny-v1", folder)
    (folder / quiz.QUIZ_FILE).write_text("questions: []\n")
    done = _cli("quiz", "--tag", "fixture", "--scenarios", str(folder),
                home=tmp_path / "home", logdir=tmp_path / "runs")
    assert done.returncode == 2
    assert f"{folder / quiz.QUIZ_FILE} has problems" in done.stderr
    assert "'questions' must be a non-empty list" in done.stderr


def _cli(*args: str, home: Path, logdir: Path, stdin: str = "",
         timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a child process, answers piped to its stdin."""
    env = {**os.environ, "COLUMNS": "400", "SANDBOX_HOME": str(home),
           "SANDBOX_LOGDIR": str(logdir)}
    return subprocess.run([sys.executable, "-m", "sandbox", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout, env=env)


def _record_broken_run(logdir: Path) -> None:
    """A recorded broken run of the fixture, as `sandbox run` leaves one."""
    tiny = catalog.get("tiny-v1", [FIXTURE_SCENARIOS])
    recorded = logdir / "tiny-v1" / "20250101-000000-shipped"
    recorded.mkdir(parents=True)
    series = {"loss/train": [[s, 2.3] for s in range(1, 52)], "metric/val": [[51, 0.1]]}
    (recorded / "record.json").write_text(json.dumps(
        {"scenario": "tiny-v1", "fingerprint": fingerprint(tiny), "candidate": "shipped",
         "results": [{"seed": 0, "status": "ok", "series": series, "test/metric": 0.1,
                      "run_dir": str(recorded / "seed0")}]}))
