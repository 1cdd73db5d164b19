"""YAML loading with YAML 1.2 number rules.

PyYAML follows YAML 1.1, which reads ``1e-3`` (no dot) as the *string* "1e-3". Learning
rates are written that way all the time, so the sandbox's loader resolves such scalars as
floats, both in files and in ``--set key=value`` overrides.
"""

import copy
import functools
import re
from pathlib import Path
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    pass


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
    again for every candidate a check runs.
    """
    return copy.deepcopy(_parsed(text))


@functools.lru_cache(maxsize=512)
def _parsed(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # safe: _Loader is a SafeLoader subclass


def load_file(path: Path) -> Any:
    return loads(path.read_text(encoding="utf-8"))
