"""Configs: the shipped YAML, a patched file on top, ``key=value`` overrides on top of that.

Every change is validated against the scenario's shipped config before anything runs:
the key must exist (with a did-you-mean), keep its type, stay inside the scenario's
bounds and choices, and not touch what the scenario locks. All problems are reported
together (the first few listed, the rest counted). Values are parsed as YAML, never
executed, by a loader that refuses aliases, duplicate keys and oversized input (see
``_yaml``); keys in a file must be plain names, since a dotted one would shadow a nested
key once the config is flattened to dotted paths.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml

from . import _yaml
from .catalog import Scenario
from .errors import ConfigError, quote

MAX_SET_CHARS = 4096  # a --set value is a number, a word or a short list
MAX_LISTED = 20  # problems listed in one refusal; the rest are counted
MAX_HINTS = 5  # did-you-mean lookups per refusal: difflib is slow, and a typo is rarely alone


class Config:
    """Read-only attribute access over a nested dict: ``cfg.optimizer.lr``."""

    def __init__(self, values: Mapping[str, Any]):
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        try:
            value = self._values[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._values), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise AttributeError(f"config has no key '{name}'{hint}") from None
        return Config(value) if isinstance(value, Mapping) else value

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the config is read-only; change it in config.yaml or with --set")

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def __repr__(self) -> str:
        return f"Config({self._values!r})"

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._values)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: the key space overrides and locks speak."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def parse_override(text: str) -> tuple[str, Any]:
    """``optimizer.lr=1e-3`` -> ``("optimizer.lr", 0.001)``: split on the first ``=``.

    The text comes from the command line, so it is capped in length and must be printable
    before it is parsed; every problem is a ConfigError naming the key.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {quote(text)} is not of the form key=value "
                          "(for example --set optimizer.lr=0.01).")
    if len(text) > MAX_SET_CHARS:
        raise ConfigError(f"--set {_show_key(key)}: the override is {len(text):,} characters "
                          f"long, over the {MAX_SET_CHARS:,}-character limit.")
    if not text.isprintable():
        raise ConfigError(f"--set {quote(text)} holds control characters (tabs, newlines, "
                          "escapes); give a plain key=value.")
    try:
        value = _yaml.loads(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: the value {quote(raw)} is not valid YAML "
                          f"({_yaml.describe(exc)}).") from None
    return key, value


def read_patch(path: Path) -> dict[str, Any]:
    """A patched config file: a full config or only the keys it changes."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file.")
    patch = _yaml.load_file(path)  # a ConfigError naming the file when it is unfit
    if patch is None:
        return {}
    if not isinstance(patch, dict):
        raise ConfigError(f"--config {path} must be a mapping of keys, like the shipped "
                          f"config.yaml, not a {type(patch).__name__}.")
    _refuse_bad_keys(patch, str(path))
    return patch


def resolve(scenario: Scenario, patch: Mapping[str, Any] | None = None,
            overrides: Iterable[str] = (), base: Mapping[str, Any] | None = None,
            source: str = "--config", base_source: str = "the candidate's config.yaml"
            ) -> dict[str, Any]:
    """The config a candidate runs with, after checking every change against the rules.

    ``base`` is the config the changes apply to (the shipped one unless a workspace or a
    solution brings its own file, which is itself checked against the shipped one).
    ``source`` and ``base_source`` name where the patch and the base came from.
    """
    shipped = flatten(_yaml.load_file(scenario.config_path))
    if base is not None:
        _refuse_bad_keys(base, base_source)
    if patch:
        _refuse_bad_keys(patch, source)
    merged = dict(flatten(base)) if base is not None else dict(shipped)
    changes: list[tuple[str, Any, str]] = []
    if patch:
        changes += [(k, v, source) for k, v in flatten(patch).items()]
    changes += [(*parse_override(o), "--set") for o in overrides]
    problems: list[str] = []
    for key, value, origin in changes:
        problem = _check(scenario, shipped, key, value, hint=len(problems) < MAX_HINTS)
        if problem:
            problems.append(f"{origin} {problem}")
        else:
            merged[key] = _coerce(shipped[key], value)
    if base is not None:
        for key, value in flatten(base).items():
            if problem := _check(scenario, shipped, key, value, hint=len(problems) < MAX_HINTS):
                problems.append(problem)
    if problems:
        _refuse("The config was refused before anything ran:", problems)
    return unflatten(merged)


def _refuse(heading: str, problems: list[str]) -> NoReturn:
    """One ConfigError listing the first :data:`MAX_LISTED` distinct problems and counting
    the rest: a file of 400,000 bad keys must not print 25 MB.
    """
    problems = list(dict.fromkeys(problems))
    listed = problems[:MAX_LISTED]
    if len(problems) > MAX_LISTED:
        listed.append(f"... and {len(problems) - MAX_LISTED:,} more")
    raise ConfigError(heading + "\n  - " + "\n  - ".join(listed))


def _refuse_bad_keys(values: Mapping[str, Any], where: str) -> None:
    """Every key must be a plain name: configs are compared as dotted paths
    (``optimizer.lr``), so a key that holds a dot, or is not a string, could shadow a
    nested one (``"optimizer.lr": 2`` beside ``optimizer: {lr: 0.1}``) or collide with one
    (``1`` and ``"1"``) without anyone noticing.
    """
    problems: list[str] = []

    def walk(node: Mapping[Any, Any], parents: list[str]) -> None:
        for key, value in node.items():
            at = ".".join(parents)
            where_key = f"{where}: the key {quote(key)}" + (f" under '{at}'" if at else "")
            if not isinstance(key, str) or not key:
                problems.append(f"{where_key} is not a name; keys are words like the "
                                "shipped config.yaml's.")
            elif not key.isprintable():
                problems.append(f"{where_key} holds control characters.")
            elif "." in key:
                problems.append(f"{where_key} holds a dot; nest it instead, as "
                                f"{_nested([*parents, *key.split('.')])}, so that it cannot "
                                "shadow the nested key of the same name.")
            elif isinstance(value, Mapping):
                walk(value, [*parents, key])

    walk(values, [])
    if problems:
        _refuse("The config was refused before anything ran:", problems)


def _nested(parts: list[str]) -> str:
    """``["optimizer", "lr"]`` -> ``optimizer: {lr: ...}``, for a did-you-mean."""
    return _show_key(": {".join(parts) + ": ..." + "}" * (len(parts) - 1), limit=80)


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _check(scenario: Scenario, shipped: dict[str, Any], key: str, value: Any,
           hint: bool = True) -> str | None:
    """One change against the shipped config; returns the problem as a sentence, or None.

    ``hint`` asks for a did-you-mean on an unknown key; callers stop asking after the first
    few problems, since difflib over every key of a huge file takes minutes.
    """
    if key not in shipped:
        close = difflib.get_close_matches(key, list(shipped), n=1, cutoff=0.6) if hint else []
        suggestion = f"; did you mean '{close[0]}'?" if close else "."
        return f"{_show_key(key)}: no such key in {scenario.id}'s config{suggestion}"
    expected = shipped[key]
    if not _same_type(expected, value):
        return (f"{key}: expected {_type_name(expected)} (shipped value {expected!r}), "
                f"got {_type_name(value)} {quote(value)}.")
    if _has_control_chars(value):
        return f"{key}: {quote(value)} holds control characters."
    if value != expected and _is_locked(scenario, key):
        return (f"{key}: locked by the scenario (it fixes the dataset, model capacity and "
                f"training budget); it must stay {expected!r}.")
    if key in scenario.bounds and not isinstance(value, bool):
        low, high = scenario.bounds[key]
        if not low <= value <= high:
            return f"{key}: {quote(value)} is out of range; allowed {low} to {high}."
    if key in scenario.choices and value not in scenario.choices[key]:
        allowed = ", ".join(map(str, scenario.choices[key]))
        return f"{key}: {quote(value)} is not one of the allowed values ({allowed})."
    return None


def _show_key(key: str, limit: int = 60) -> str:
    """A dotted key as given, cut to ``limit`` characters."""
    return key if len(key) <= limit else key[:limit - 3] + "..."


def _has_control_chars(value: Any) -> bool:
    """A string (or one inside a list) holding tabs, newlines or escapes, which no config
    value needs and a terminal would act on when the value is echoed back.
    """
    if isinstance(value, str):
        return not value.isprintable()
    return isinstance(value, list) and any(map(_has_control_chars, value))


def _is_locked(scenario: Scenario, key: str) -> bool:
    return any(key == lock or key.startswith(lock + ".") for lock in scenario.locked)


def _same_type(expected: Any, value: Any) -> bool:
    if expected is None:
        return True
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool)
    if isinstance(expected, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(expected))


def _coerce(expected: Any, value: Any) -> Any:
    return float(value) if isinstance(expected, float) else value


def _type_name(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a mapping", type(None): "null"}
    return names.get(type(value), type(value).__name__)
