"""The diagnoser against the labelled corpus (corpus/): 45 real runs from four loggers.

The labels (corpus/labels.json) were written from the contact sheets before the diagnoser
was run; this scores what it names against them, per symptom, and lists every
disagreement. No training here: the event files are committed, so this needs only the
sandbox (make_corpus.py, which regenerates them, needs Lightning and tensorboardX).

    python benchmarks/bench_corpus.py           # prints the table CORPUS.md holds
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_diagnosis import accuracy

from sandbox.diagnosis import diagnose

CORPUS = Path(__file__).parent / "corpus"


def labelled() -> dict[str, set[str]]:
    runs = json.loads((CORPUS / "labels.json").read_text())["runs"]
    return {name: set(entry["labels"]) for name, entry in runs.items()}


def named(run: str) -> set[str]:
    [found] = diagnose(CORPUS / "runs" / run)
    return {f.symptom for f in found.findings}


def rows() -> list[tuple[str, set[str], set[str], set[str]]]:
    return [(run, named(run), labels, set()) for run, labels in labelled().items()]


def main() -> list[str]:
    found = rows()
    loggers = sorted({name.split("/")[0] for name, *_ in found})
    lines = [f"{len(found)} runs from {len(loggers)} loggers ({', '.join(loggers)}):", ""]
    lines += accuracy(found)
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
