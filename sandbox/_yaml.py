"""YAML loading with YAML 1.2 number rules, hardened against hostile input.

PyYAML follows YAML 1.1, which reads ``1e-3`` (no dot) as the *string* "1e-3". Learning
rates are written that way all the time, so the sandbox's loader resolves such scalars as
floats, both in files and in ``--set key=value`` overrides.

Configs, overrides and scenario metadata are small, flat-ish mappings written by hand, so
the loader refuses what they never need and what makes a parse explode or mislead:

- anchors and aliases (``&a`` / ``*a``): an "alias bomb" of a few hundred bytes expands
  to gigabytes once copied;
- a key given twice in one mapping: YAML would silently keep the last one;
- nesting deeper than :data:`MAX_DEPTH` (PyYAML composes recursively and would hit
  RecursionError) and more than :data:`MAX_NODES` values (pure-Python PyYAML parses about
  150 KB a second, so the count bounds the time a parse can take);
- files over :data:`MAX_FILE_BYTES`, refused before they are read.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.scanner import ScannerError

from .errors import ConfigError, quote

MAX_FILE_BYTES = 256 * 1024  # the largest shipped YAML file is under 8 KB
MAX_DEPTH = 32  # shipped files nest 4 levels at most
MAX_NODES = 2_000  # shipped files hold 110 values at most


class _Loader(yaml.SafeLoader):
    """SafeLoader with the refusals listed in the module docstring."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def fetch_flow_collection_start(self, token_class: type) -> None:
        # Checked while scanning too: the scanner looks ahead across every open ``[``/``{``
        # for a possible key, so ``[[[[...`` costs quadratic time before composing starts.
        if self.flow_level >= MAX_DEPTH:
            raise ScannerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                               self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or event.anchor is not None:
            raise ComposerError(None, None, "anchors and aliases (&name, *name) are not "
                                "allowed", event.start_mark, "write each value out")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise ComposerError(None, None, f"more than {MAX_NODES:,} values",
                                event.start_mark)
        if self._depth >= MAX_DEPTH:
            raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # Some scalars fail in plain Python, not in PyYAML: a date like 2020-13-45, or an
        # integer of more than 4,300 digits. Report them like any other YAML mistake.
        try:
            return super().construct_object(node, deep=deep)
        except ValueError as exc:
            raise ConstructorError(None, None, f"unreadable value ({str(exc).split(':')[0]})",
                                   node.start_mark) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue  # unhashable keys are refused by SafeConstructor itself
            key = self.construct_object(key_node)
            if key in first_seen:
                raise ConstructorError(
                    None, None, f"duplicate key {quote(key)}", key_node.start_mark,
                    f"it was first given at line {first_seen[key].line + 1}; give each key "
                    "once")
            first_seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def loads(text: str) -> Any:
    """A fresh copy each call (callers may change what they get); the parse itself is
    remembered, since matching a fix against the known ones reads the same few files
    again for every candidate a check runs. Raises ``yaml.YAMLError`` (see :func:`describe`).
    """
    return copy.deepcopy(_parsed(text))


@functools.lru_cache(maxsize=512)
def _parsed(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # safe: _Loader is a SafeLoader subclass


def load_file(path: Path) -> Any:
    """The parsed file; every way it can be unfit (too big, unreadable, not UTF-8, not
    valid YAML) is a ConfigError naming the file, so no caller shows a traceback.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)  # st_size can lie (a growing file, /proc)
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror or exc}.") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path} is {max(size, len(data)):,} bytes, over the "
                          f"{MAX_FILE_BYTES:,}-byte limit for a YAML file here (a config is "
                          "well under 1 KB); it was not read.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path} is not UTF-8 text (byte {data[exc.start:exc.start + 1]!r} "
                          f"on line {line}): a binary file, or text saved in another "
                          "encoding? Save it as UTF-8.") from None
    try:
        return loads(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {describe(exc)}.") from None


def describe(exc: yaml.YAMLError) -> str:
    """PyYAML's error as one line: the problem and where (PyYAML's own text spans several
    lines and quotes the offending source).
    """
    if isinstance(exc, yaml.reader.ReaderError):  # a control character, from PyYAML's Reader
        shown = chr(exc.character) if isinstance(exc.character, int) else exc.character
        return f"{exc.reason}: {shown!r} at character {exc.position}"
    if not isinstance(exc, yaml.MarkedYAMLError):
        return " ".join(str(exc).split())
    text = exc.problem or exc.context or "invalid YAML"
    if exc.problem_mark is not None:
        text += f" at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
    if exc.problem and exc.context:
        text += f", {exc.context}"
        if exc.context_mark is not None:
            text += f" started at line {exc.context_mark.line + 1}"
    if exc.note:
        text += f"; {exc.note}"
    return text
