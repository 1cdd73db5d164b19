"""Hostile or sloppy config input: every case is a ConfigError (exit 2, one message naming
the file or ``--set KEY``), refused quickly and in little memory, never a traceback.

Each test writes real files; the CLI ones run ``python -m sandbox verify`` in a child
process, against a ``--config`` file or a workspace's own config.yaml.
"""

from __future__ import annotations

import shutil
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from sandbox import _yaml, catalog, config
from sandbox.errors import ConfigError

from .conftest import ROOT, run_cli

SCENARIO = catalog.get("vanishing-gradients-v2")
ID = SCENARIO.id


def alias_bomb(depth: int = 9, width: int = 9) -> str:
    """"Billion laughs": ``width ** depth`` strings from a few hundred bytes."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, depth):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def refused(call: Callable[[], object], within_s: float = 1.0,
            max_bytes: int = 64 * 2**20) -> str:
    """The ConfigError ``call`` raises, checked to come within ``within_s`` seconds and
    ``max_bytes`` of Python allocations.
    """
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ConfigError) as error:
            call()
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < within_s, f"took {elapsed:.2f} s"
    assert peak < max_bytes, f"peaked at {peak / 2**20:.0f} MiB"
    return str(error.value)


def patch_file(tmp_path: Path, text: str | bytes, name: str = "patch.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def workspace(tmp_path: Path, config_text: str | bytes) -> dict[str, str]:
    """A workspace holding ``config_text`` as its config.yaml; returns the CLI's env."""
    root = tmp_path / "home" / ID
    root.mkdir(parents=True)
    shutil.copy(SCENARIO.pipeline_path, root / "pipeline.py")
    patch_file(root, config_text, "config.yaml")
    return {"SANDBOX_HOME": str(tmp_path / "home")}


def assert_refused_by_cli(result, *needles: str) -> None:
    """Exit 2 with the CLI's one message: no traceback, no internal error."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert len(result.stderr) < 2_000, result.stderr[:2_000]
    for needle in needles:
        assert needle in result.stderr


# 1. Anchors and aliases -------------------------------------------------------------------

def test_alias_bomb_file_is_refused_fast_and_small(tmp_path: Path):
    path = patch_file(tmp_path, alias_bomb())
    message = refused(lambda: config.read_patch(path), max_bytes=8 * 2**20)
    assert str(path) in message and "anchors and aliases" in message


def test_any_anchor_or_alias_is_refused(tmp_path: Path):
    path = patch_file(tmp_path, "optimizer:\n  lr: &rate 0.1\n  momentum: *rate\n")
    message = refused(lambda: config.read_patch(path))
    assert "anchors and aliases" in message and "line 2" in message


def test_alias_bomb_via_the_cli_config_file_and_workspace(tmp_path: Path):
    path = patch_file(tmp_path, alias_bomb())
    assert_refused_by_cli(run_cli("verify", ID, "--config", str(path), timeout=60),
                          str(path), "anchors and aliases")
    env = workspace(tmp_path, alias_bomb())
    assert_refused_by_cli(run_cli("verify", ID, env=env, timeout=60),
                          "config.yaml", "anchors and aliases")


def test_alias_bomb_in_a_set_value():
    bomb = "{" + ", ".join(alias_bomb().splitlines()) + "}"
    message = refused(lambda: config.parse_override(f"optimizer.lr={bomb}"))
    assert message.startswith("--set optimizer.lr:") and "anchors and aliases" in message
    assert_refused_by_cli(run_cli("verify", ID, "--set", f"optimizer.lr={bomb}", timeout=60),
                          "--set optimizer.lr", "anchors and aliases")


def test_no_shipped_yaml_needs_what_the_loader_refuses():
    files = sorted(ROOT.glob("scenarios/**/*.yaml")) + sorted(ROOT.glob("tests/fixtures/**/*.yaml"))
    assert files
    for path in files:
        _yaml.load_file(path)  # no anchors, no duplicate keys, within every limit
        assert path.stat().st_size < _yaml.MAX_FILE_BYTES / 10


# 2. Duplicate keys ------------------------------------------------------------------------

@pytest.mark.parametrize("text, key, line, first", [
    ("optimizer:\n  lr: 0.1\n  lr: 2.0\n", "'lr'", 3, 2),
    ("model:\n  depth: 8\noptimizer:\n  lr: 0.1\nmodel:\n  width: 64\n", "'model'", 5, 1),
    ("optimizer: {lr: 0.1, momentum: 0.9, lr: 2.0}\n", "'lr'", 1, 1),
    (f"{'k' * 1000}: 1\n{'k' * 1000}: 2\n", f"'{'k' * 56}...", 2, 1),
])
def test_duplicate_keys_are_refused_with_key_and_line(tmp_path: Path, text, key, line, first):
    path = patch_file(tmp_path, text)
    message = refused(lambda: config.read_patch(path))
    assert str(path) in message
    assert f"duplicate key {key} at line {line}" in message
    assert f"first given at line {first}" in message


def test_duplicate_keys_in_a_set_value_and_the_workspace(tmp_path: Path):
    with pytest.raises(ConfigError, match="duplicate key 'a'"):
        config.parse_override("optimizer.lr={a: 1, a: 2}")
    env = workspace(tmp_path, "optimizer:\n  lr: 0.1\n  lr: 2.0\n")
    assert_refused_by_cli(run_cli("verify", ID, env=env, timeout=60),
                          "config.yaml", "duplicate key 'lr' at line 3")


# 3. Keys that could shadow one another ----------------------------------------------------

@pytest.mark.parametrize("text, shown", [
    ('"optimizer.lr": 2.0\n', "'optimizer.lr' holds a dot"),
    ("optimizer:\n  lr: 1.0\noptimizer.lr: 2.0\n", "'optimizer.lr' holds a dot"),
    ("optimizer.lr: 2.0\noptimizer:\n  lr: 1.0\n", "'optimizer.lr' holds a dot"),
    ('optimizer:\n  "lr.x": 1\n', "'lr.x' under 'optimizer' holds a dot"),
    ("optimizer:\n  1: 2\n", "the key 1 under 'optimizer' is not a name"),
    ("true: 1\n'True': 2\n", "the key True is not a name"),
    ('"": 1\n', "the key '' is not a name"),
    ('"optim\\u001bizer": {lr: 1}\n', "holds control characters"),
])
def test_keys_that_could_shadow_others_are_refused(tmp_path: Path, text, shown):
    path = patch_file(tmp_path, text)
    message = refused(lambda: config.read_patch(path))
    assert f"{path}: " in message and shown in message


def test_a_dotted_key_suggests_nesting(tmp_path: Path):
    path = patch_file(tmp_path, "optimizer:\n  lr: 0.05\noptimizer.lr: 2.0\n")
    message = refused(lambda: config.read_patch(path))
    assert "nest it instead, as optimizer: {lr: ...}" in message
    assert_refused_by_cli(run_cli("verify", ID, "--config", str(path), timeout=60),
                          str(path), "'optimizer.lr' holds a dot")


def test_a_dotted_key_in_a_whole_base_config_is_refused():
    base = _yaml.load_file(SCENARIO.config_path)
    base["optimizer.lr"] = 2.0
    message = refused(lambda: config.resolve(SCENARIO, base=base, base_source="my.yaml"))
    assert "my.yaml: the key 'optimizer.lr' holds a dot" in message


# 4. Size and the number of problems -------------------------------------------------------

def test_a_6_mb_file_of_400k_unknown_keys_is_refused_before_parsing(tmp_path: Path):
    text = "".join(f"unknown_key_{i}: {i}\n" for i in range(400_000))
    path = patch_file(tmp_path, text[:6 * 2**20])
    message = refused(lambda: config.resolve(SCENARIO, config.read_patch(path)))
    assert str(path) in message and f"{6 * 2**20:,} bytes" in message
    assert len(message) < 400 and "\n" not in message
    env = workspace(tmp_path, text[:6 * 2**20])
    assert_refused_by_cli(run_cli("verify", ID, env=env, timeout=60), "config.yaml", "bytes")


def test_a_file_just_under_the_size_limit_is_refused_fast(tmp_path: Path):
    text = "".join(f"k{i}: 1\n" for i in range(100_000))[:_yaml.MAX_FILE_BYTES]
    path = patch_file(tmp_path, text)
    message = refused(lambda: config.resolve(SCENARIO, config.read_patch(path)))
    assert str(path) in message and "more than" in message and "values" in message


def test_a_refusal_lists_the_first_problems_and_counts_the_rest(tmp_path: Path):
    path = patch_file(tmp_path, "optimizer:\n" + "".join(f"  lr{i}: 1\n" for i in range(300)))
    message = refused(lambda: config.resolve(SCENARIO, config.read_patch(path)))
    listed = message.split("\n  - ")[1:]
    assert len(listed) == config.MAX_LISTED + 1 and listed[-1] == "... and 280 more"
    assert message.count("did you mean 'optimizer.lr'?") == config.MAX_HINTS


# 5. Files that are not UTF-8 text ---------------------------------------------------------

@pytest.mark.parametrize("data, cause", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "is not UTF-8 text (byte b'\\x89' on line 1)"),
    (b"model:\n  activation: caf\xe9\n", "is not UTF-8 text (byte b'\\xe9' on line 2)"),
    (b"optimizer:\n  lr: \x00\x01\n", "is not valid YAML: special characters are not allowed"),
    (b"\xff\xfeo\x00p\x00", "is not UTF-8 text"),
])
def test_binary_or_non_utf8_files_name_the_file(tmp_path: Path, data: bytes, cause: str):
    path = patch_file(tmp_path, data)
    message = refused(lambda: config.read_patch(path))
    assert message.startswith(f"{path} ") and cause in message and "\n" not in message


def test_a_binary_workspace_config_exits_2(tmp_path: Path):
    env = workspace(tmp_path, bytes(range(256)) * 4)
    assert_refused_by_cli(run_cli("verify", ID, env=env, timeout=60),
                          "config.yaml is not UTF-8 text")


@pytest.mark.parametrize("text, cause", [
    ("optimizer:\n  lr: " + "9" * 5_000 + "\n", "unreadable value (Exceeds the limit"),
    ("optimizer:\n  lr: 2020-13-45\n", "unreadable value (month must be in 1..12) at line 2"),
])
def test_values_python_cannot_build_are_yaml_errors(tmp_path: Path, text: str, cause: str):
    path = patch_file(tmp_path, text)
    assert cause in refused(lambda: config.read_patch(path))


# 6. --set values --------------------------------------------------------------------------

def test_a_huge_set_value_is_refused_before_parsing():
    message = refused(lambda: config.parse_override("model.activation=" + "x" * 10_000_000),
                      max_bytes=64 * 2**20)
    assert message.startswith("--set model.activation: the override is 10,000,017 characters")
    # The CLI too, at a size argv allows (Linux caps one argument at 128 KiB).
    assert_refused_by_cli(run_cli("verify", ID, "--set", "model.activation=" + "x" * 100_000,
                                  timeout=60), "--set model.activation", "characters long")


def test_deep_nesting_is_refused_without_recursion_error():
    with pytest.raises(yaml.YAMLError, match="nested more than"):
        _yaml.loads("[" * 10_000 + "]" * 10_000)
    with pytest.raises(yaml.YAMLError, match="nested more than"):
        _yaml.loads("a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 60)))
    deep = "optimizer.lr=" + "[" * 2_000 + "]" * 2_000
    assert "nested more than" in refused(lambda: config.parse_override(deep))
    assert_refused_by_cli(run_cli("verify", ID, "--set", deep, timeout=60),
                          "--set optimizer.lr", "nested more than")


def test_a_deeply_nested_file_is_refused(tmp_path: Path):
    path = patch_file(tmp_path, "optimizer: " + "{a: " * 10_000 + "}" * 10_000 + "\n")
    assert "nested more than" in refused(lambda: config.read_patch(path))


@pytest.mark.parametrize("override, cause", [
    ("optimizer.lr=\x07", "holds control characters"),
    ("model.activation=relu\x1b[2J", "holds control characters"),
    ("optim\x1bizer.lr=1", "holds control characters"),
    ('model.activation="relu\\t"', "model.activation: 'relu\\t' holds control characters"),
    ("optimizer.lr=2020-13-45", "unreadable value"),
])
def test_control_characters_in_set_are_refused(override: str, cause: str):
    message = refused(lambda: config.resolve(SCENARIO, overrides=[override]))
    assert cause in message and "\x1b" not in message and "\x07" not in message


def test_control_characters_in_set_exit_2_via_the_cli():
    assert_refused_by_cli(run_cli("verify", ID, "--set", "model.activation=relu\x1b[2J",
                                  timeout=60), "holds control characters")
    assert_refused_by_cli(run_cli("verify", ID, "--set", 'model.activation="relu\\e"',
                                  timeout=60), "holds control characters")


def test_long_values_are_cut_in_messages():
    message = refused(lambda: config.resolve(SCENARIO,
                                             overrides=["model.activation=" + "x" * 4_000]))
    assert "is not one of the allowed values" in message and len(message) < 300
