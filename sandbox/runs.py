"""Run folders and their records: how a verification's folder is named, numbered and
found again.

``runs/<scenario>/attempt-NN <what changed>``: the attempt number is claimed atomically,
the rest says what ran (``shipped (broken)``, ``optimizer.lr=0.02``, ``workspace
(pipeline.py edited)``), so TensorBoard's run list reads as the history of the attempts.
Each folder's ``record.json`` starts with short fields (candidate, fingerprint, attempt,
start time) that :func:`recorded_runs` reads without loading the results; the baseline
lookup, ``sandbox tb`` and the quiz all read runs through here.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .catalog import Scenario
from .errors import ConfigError
from .harness.candidate import Candidate, fingerprint

ATTEMPT = re.compile(r"attempt-(\d+)(?= |$)")
OLD_GROUP = re.compile(r"(\d{8}-\d{6})(?:-\d+)?-")
RUN_NAME_MAX = 96  # characters in a run folder's name, far below any filesystem's limit
VALUE_MAX = 24  # characters of one config value in a name
# What a name keeps: no path separators or control characters, and nothing TensorBoard's
# --logdir_spec would split on (``,`` and ``:``) or a shell would expand unquoted.
UNSAFE = re.compile(r"[^A-Za-z0-9 ._=+\-()\[\]@%~^]")
BROKEN = "shipped (broken)"
RECORD_HEAD_BYTES = 8192  # the fields before "results" (a record may run to megabytes)
RECORD_MAX_BYTES = 256 * 2**20


def safe_name(text: str, limit: int = RUN_NAME_MAX) -> str:
    """``text`` as a folder name: unsafe characters become ``_``, runs of spaces one, and
    a name over ``limit`` characters is cut with ``...``.
    """
    name = re.sub(r"\s+", " ", UNSAFE.sub("_", text)).strip(" .")
    if len(name) > limit:
        name = name[:limit - 3].rstrip(" .") + "..."
    return name or "run"


def _shown(value: Any) -> str:
    """A config value as ``--set`` would take it, short (``0.02``, ``true``, ``[64 64]``)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, float):
        text = repr(value) if len(repr(value)) <= 10 else f"{value:.4g}"
    elif isinstance(value, list | tuple):
        text = "[" + " ".join(_shown(v) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{}" if not value else "{...}"
    else:
        text = str(value)
    text = safe_name(text, VALUE_MAX)
    return text


def config_changes(scenario: Scenario, candidate: Candidate) -> list[str]:
    """``key=value`` for each key whose value differs from the shipped config.yaml's (and
    ``-key`` for one it lacks), in the config's order.
    """
    from . import _yaml
    from .config import flatten
    try:
        shipped = flatten(_yaml.load_file(scenario.config_path) or {})
    except (OSError, ValueError, ConfigError):
        shipped = {}
    now = flatten(candidate.config)
    changed = [f"{key}={_shown(value)}" for key, value in now.items()
               if key not in shipped or _differs(shipped[key], value)]
    return changed + [f"-{key}" for key in shipped if key not in now]


def _differs(a: Any, b: Any) -> bool:
    """``true`` is a change from ``1`` (Python calls them equal); ``1.0`` is not from ``1``."""
    return (isinstance(a, bool) != isinstance(b, bool)) or a != b


def _code_changed(scenario: Scenario, candidate: Candidate) -> bool:
    try:
        return Path(candidate.pipeline).read_bytes() != scenario.pipeline_path.read_bytes()
    except OSError:
        return True


def _fit(items: list[str], budget: int) -> str:
    """``items`` joined with spaces, as many as fit in ``budget``, then ``+N more``."""
    shown: list[str] = []
    for i, item in enumerate(items):
        more = len(items) - i - 1
        rest = f" +{more} more" if more else ""
        if len(" ".join([*shown, item]) + rest) <= budget:
            shown.append(item)
            continue
        return " ".join([*shown, f"+{len(items) - i} more"])
    return " ".join(shown)


def run_label(scenario: Scenario, candidate: Candidate,
              limit: int = RUN_NAME_MAX - len("attempt-000 ")) -> str:
    """What a run folder's name says after its attempt number: the shipped pipeline as
    ``shipped (broken)``, ``--set`` changes as themselves (``optimizer.lr=0.02``), anything
    else as what it is and what it changes from the shipped pipeline and config
    (``workspace (pipeline.py edited + optimizer.lr=0.02)``, ``solution (...)``,
    ``pipeline my_fix.py``, ``config (train.epochs=6)``).
    """
    label = candidate.label
    base = label.removesuffix("+set")
    changes = config_changes(scenario, candidate)
    if label == "shipped":
        return BROKEN
    if base == "shipped":
        return _fit(changes, limit) if changes else "shipped (--set changed nothing)"
    code = _code_changed(scenario, candidate)
    kind = safe_name(base, 40)
    if base == "pipeline":
        kind = safe_name(f"pipeline {Path(candidate.pipeline).name}", 40)
        if code and not changes:  # its own file, the shipped config
            return kind
        code = False  # the file's name says it
    tokens = ["pipeline.py edited"] if code else []
    room = limit - len(kind) - 3 - (len(" + ".join(tokens)) + 3 if tokens else 0)
    if changes:
        tokens.append(_fit(changes, max(room, 12)))
    return f"{kind} ({' + '.join(tokens) if tokens else 'same as shipped'})"


def attempt_number(name: str) -> int | None:
    """The attempt a run folder's name says (``attempt-07 ...`` -> 7); None for others."""
    found = ATTEMPT.match(name)
    return int(found.group(1)) if found else None


def label_of(name: str) -> str:
    """What a run folder's name says after its attempt number (``attempt-04 workspace
    (...)`` -> ``workspace (...)``), or after an older folder's time stamp.
    """
    found = ATTEMPT.match(name) or OLD_GROUP.match(name)
    return name[found.end():].lstrip() if found else name


def _claims(parent: Path, number: int, mine: str) -> bool:
    """Does any folder other than ``mine`` hold attempt ``number``?"""
    with os.scandir(parent) as entries:
        return any(e.name != mine and attempt_number(e.name) == number for e in entries)


def _next_attempt(parent: Path) -> int:
    """One past the highest attempt here, and past the count of run folders (old names)."""
    numbers, folders = [], 0
    with os.scandir(parent) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            folders += 1
            number = attempt_number(entry.name)
            if number is not None:
                numbers.append(number)
    return max([*numbers, folders]) + 1


def new_run_group(parent: Path, label: str) -> Path:
    """``runs/<scenario>/attempt-NN <label>``: the next attempt number of this scenario's
    folder, never reusing one, even with verifications running at once. The bare number
    (``attempt-NN``) is claimed first with an exclusive ``mkdir``; whoever makes it and
    finds no other folder of that number owns it and renames it to its full name (so at
    any moment one folder at most holds the number, under one of its two names).
    """
    label = safe_name(label, RUN_NAME_MAX - len("attempt-000 "))
    try:
        parent.mkdir(parents=True, exist_ok=True)
        number = _next_attempt(parent)
        for _ in range(1000):
            claim = parent / f"attempt-{number:02d}"
            try:
                claim.mkdir()
            except FileExistsError:
                number += 1
                continue
            if _claims(parent, number, claim.name):  # taken under its full name
                claim.rmdir()
                number += 1
                continue
            path = parent / f"{claim.name} {label}"
            os.rename(claim, path)
            return path
    except OSError as exc:
        raise ConfigError(f"cannot write run logs under {parent}: {exc.strerror}. "
                          "Choose another folder with --logdir.") from None
    raise ConfigError(f"could not create a new run folder under {parent}")


@dataclass(frozen=True)
class RecordedRun:
    """A run folder of a scenario and what its record.json says before its results
    (folders of the old naming, and runs still going or stopped, included).
    """

    path: Path
    attempt: int | None
    candidate: str | None  # None: no readable record (running, stopped, not a run)
    fingerprint: str | None
    started: float  # seconds since the epoch; the folder's own time where unrecorded

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_shipped(self) -> bool:
        return self.candidate == "shipped"


def _read_record(path: Path, limit: int) -> bytes | None:
    """Up to ``limit`` bytes of a record: a regular file, not through a link, never
    blocking (a FIFO planted under the name is skipped).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > RECORD_MAX_BYTES:
            return None
        chunks, left = [], min(limit, info.st_size)
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _record_head(path: Path) -> dict[str, Any] | None:
    """The fields of a record before its results (the whole record parsed if need be)."""
    head = _read_record(path, RECORD_HEAD_BYTES)
    if head is None:
        return None
    text = head.decode("utf-8", "replace")
    cut = text.find(', "results": ')
    if cut > 0:
        try:
            found = json.loads(text[:cut] + "}")
            if isinstance(found, dict):
                return found
        except ValueError:
            pass
    whole = _read_record(path, RECORD_MAX_BYTES)
    try:
        found = json.loads(whole) if whole is not None else None
    except ValueError:
        return None
    if not isinstance(found, dict):
        return None
    return {k: v for k, v in found.items() if k not in ("results", "verification")}


def _started(head: dict[str, Any] | None, entry: os.DirEntry) -> float:
    stamp = head.get("started") if head else None
    if isinstance(stamp, str):
        try:
            return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").timestamp()
        except ValueError:
            pass
    old = OLD_GROUP.match(entry.name)
    if old:
        try:
            return time.mktime(time.strptime(old.group(1), "%Y%m%d-%H%M%S"))
        except ValueError:
            pass
    try:
        return entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return 0.0


def recorded_runs(folder: Path) -> list[RecordedRun]:
    """The run folders of one scenario (``<logdir>/<scenario>``), oldest first: by the
    time each started, then by attempt number. Empty when the folder does not exist.
    """
    runs = []
    try:
        with os.scandir(folder) as entries:
            listed = [e for e in entries if not e.name.startswith(".")
                      and e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    for entry in listed:
        head = _record_head(Path(entry.path) / "record.json")
        candidate = head.get("candidate") if head else None
        digest = head.get("fingerprint") if head else None
        runs.append(RecordedRun(Path(entry.path), attempt_number(entry.name),
                                candidate if isinstance(candidate, str) else None,
                                digest if isinstance(digest, str) else None,
                                _started(head, entry)))
    return sorted(runs, key=lambda r: (r.started, r.attempt or 0, r.name))


def find_baseline(scenario: Scenario, logdir: Path,
                  seeds: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """The newest recorded run of this exact shipped pipeline, if any: the record says it
    ran the shipped pipeline (whatever its folder is called) of this fingerprint. With
    ``seeds``, only a run that has every one of them, returned in that order, so the PNG
    shows the broken run on the candidate's seeds, not on some of them.
    """
    want = fingerprint(scenario)
    for run in reversed(recorded_runs(Path(logdir) / scenario.id)):
        if not run.is_shipped or run.fingerprint != want:
            continue
        whole = _read_record(run.path / "record.json", RECORD_MAX_BYTES)
        try:
            record = json.loads(whole) if whole is not None else None
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("results"), list) \
                and record["results"]:
            chosen = _on_seeds(record["results"], seeds)
            if chosen:
                return chosen
    return []


def _on_seeds(results: list[Any], seeds: Sequence[int] | None) -> list[dict[str, Any]]:
    """``results`` on exactly ``seeds`` (all of them when None); empty if one is missing."""
    by_seed = {r["seed"]: r for r in results if isinstance(r, dict) and "seed" in r}
    if seeds is None:
        return list(by_seed.values())
    return [by_seed[s] for s in seeds] if all(s in by_seed for s in seeds) else []
