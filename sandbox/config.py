"""Configs: the shipped YAML, a patched file on top, ``key=value`` overrides on top of that.

Every change is validated against the scenario's shipped config before anything runs:
the key must exist (with a did-you-mean), keep its type, stay inside the scenario's
bounds and choices, and not touch what the scenario locks. All problems are reported
together. Values are parsed as YAML, never executed.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from . import _yaml
from .catalog import Scenario
from .errors import ConfigError


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
    """``optimizer.lr=1e-3`` -> ``("optimizer.lr", 0.001)``: split on the first ``=``."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set '{text}' is not of the form key=value "
                          "(for example --set optimizer.lr=0.01).")
    try:
        value = _yaml.loads(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: the value '{raw}' is not valid YAML ({exc}).") from None
    return key, value


def read_patch(path: Path) -> dict[str, Any]:
    """A patched config file: a full config or only the keys it changes."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file.")
    try:
        patch = _yaml.load_file(path)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config {path} is not valid YAML: {exc}") from None
    if patch is None:
        return {}
    if not isinstance(patch, dict):
        raise ConfigError(f"--config {path} must be a mapping of keys, like the shipped "
                          f"config.yaml, not a {type(patch).__name__}.")
    return patch


def resolve(scenario: Scenario, patch: Mapping[str, Any] | None = None,
            overrides: Iterable[str] = (), base: Mapping[str, Any] | None = None,
            source: str = "--config") -> dict[str, Any]:
    """The config a candidate runs with, after checking every change against the rules.

    ``base`` is the config the changes apply to (the shipped one unless a workspace or a
    solution brings its own file, which is itself checked against the shipped one).
    """
    shipped = flatten(_yaml.load_file(scenario.config_path))
    merged = dict(flatten(base)) if base is not None else dict(shipped)
    changes: list[tuple[str, Any, str]] = []
    if patch:
        changes += [(k, v, source) for k, v in flatten(patch).items()]
    changes += [(*parse_override(o), "--set") for o in overrides]
    problems: list[str] = []
    for key, value, origin in changes:
        problem = _check(scenario, shipped, key, value)
        if problem:
            problems.append(f"{origin} {problem}")
        else:
            merged[key] = _coerce(shipped[key], value)
    if base is not None:
        problems += [p for k, v in flatten(base).items() if (p := _check(scenario, shipped, k, v))]
    if problems:
        raise ConfigError("The config was refused before anything ran:\n  - "
                          + "\n  - ".join(dict.fromkeys(problems)))
    return unflatten(merged)


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _check(scenario: Scenario, shipped: dict[str, Any], key: str, value: Any) -> str | None:
    """One change against the shipped config; returns the problem as a sentence, or None."""
    if key not in shipped:
        close = difflib.get_close_matches(key, list(shipped), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else "."
        return f"{key}: no such key in {scenario.id}'s config{hint}"
    expected = shipped[key]
    if not _same_type(expected, value):
        return (f"{key}: expected {_type_name(expected)} (shipped value {expected!r}), "
                f"got {_type_name(value)} {value!r}.")
    if value != expected and _is_locked(scenario, key):
        return (f"{key}: locked by the scenario (it fixes the dataset, model capacity and "
                f"training budget); it must stay {expected!r}.")
    if key in scenario.bounds and not isinstance(value, bool):
        low, high = scenario.bounds[key]
        if not low <= value <= high:
            return f"{key}: {value!r} is out of range; allowed {low} to {high}."
    if key in scenario.choices and value not in scenario.choices[key]:
        allowed = ", ".join(map(str, scenario.choices[key]))
        return f"{key}: {value!r} is not one of the allowed values ({allowed})."
    return None


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
