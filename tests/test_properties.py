"""Property-based tests: generated configs, ``--set`` values and command lines.

Whatever is thrown at it, the tool answers 0, 1 or 2 with one message and no traceback,
never 3 (an internal error), in bounded time and memory. Training is not what is under
test here, so in the command-line property a run that would start is stopped at the
pool (``WouldRun``): everything before it (parsing, configs, workspaces, history) is real.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import catalog, config
from sandbox.cli.main import main
from sandbox.errors import ConfigError

from .conftest import FIXTURE_SCENARIOS, ROOT

TINY = catalog.get("tiny-v1", [FIXTURE_SCENARIOS])
SHIPPED_KEYS = sorted(config.flatten(yaml.safe_load(TINY.config_path.read_text())))
FAST = settings(deadline=None,  # examples per test: the profile's (tests/conftest.py)
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Text a user (or a fuzzer) might type: YAML that means something unusual, and text that
# is not YAML at all.
TRICKY = ["", "~", "null", "1e-3", "-1", "nan", ".inf", "1" * 5000, "[1, 2", "{a: 1}",
          "&a 1", "*a", "!!python/object/apply:os.system ['true']", "!!binary AAAA",
          "[" * 500, "{" * 100, "'\\x00'", "\"\\t\"", "a: 1\na: 2", "- x\n- y", "é", "\u202e",
          "2020-13-45", "0x1F", "0o17", "1_000", "yes", "on", "=", "==", "a=b=c"]
scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                   st.text(max_size=20), st.sampled_from(TRICKY))
values = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
keys = st.one_of(st.sampled_from(SHIPPED_KEYS), st.sampled_from(
    ["", ".", "a..b", "optimizer.", ".lr", "optimizer.lr.x", "data", "optimizer", "train"]),
    st.text(max_size=16))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@FAST
@given(key=keys, raw=st.one_of(st.sampled_from(TRICKY), st.text(max_size=60)))
def test_any_set_override_is_accepted_or_refused_in_bounded_time(key, raw):
    started = time.monotonic()
    try:
        resolved = config.resolve(TINY, overrides=[f"{key}={raw}"])
    except ConfigError as error:
        assert str(error) and len(str(error)) < 5000
    else:
        assert set(config.flatten(resolved)) == set(SHIPPED_KEYS)
    assert time.monotonic() - started < 1


@FAST
@given(patch=st.one_of(values, st.dictionaries(keys, values, max_size=6)))
def test_any_config_file_is_accepted_or_refused_in_bounded_time(tmp_path_factory, patch):
    path = tmp_path_factory.mktemp("config") / "config.yaml"
    path.write_text(yaml.safe_dump(patch, allow_unicode=True))
    started = time.monotonic()
    try:
        config.resolve(TINY, config.read_patch(path))
    except ConfigError as error:
        assert str(path) in str(error) or "--config" in str(error) or "refused" in str(error)
    assert time.monotonic() - started < 1


@FAST
@given(data=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                      st.sampled_from(TRICKY).map(str.encode)))
def test_any_bytes_as_a_config_file_are_accepted_or_refused(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("raw") / "config.yaml"
    path.write_bytes(data)
    started = time.monotonic()
    with contextlib.suppress(ConfigError):
        config.resolve(TINY, config.read_patch(path))
    assert time.monotonic() - started < 1


class WouldRun(BaseException):
    """Raised where a run would start; not an Exception, so the CLI cannot swallow it."""


COMMANDS = ["list", "show", "run", "verify", "start", "hint", "watch", "solution", "drill",
            "quiz", "stats", "diagnose", "demo", "check", "nope", ""]
WORDS = ["tiny-v1", "nope-v1", "--seed", "--seeds", "--minutes", "--count", "--set",
         "--config", "--pipeline", "--solution", "--shipped", "--device", "cpu", "cuda",
         "--json", "--reset", "--difficulty", "--tag", "--interview", "--logdir", "--yes",
         "--help", "-h", "0", "-1", "1", "3", "nan", "inf", "-inf", "1e309",
         "99999999999999999999", "optimizer.lr=2", "optimizer.lr=", "data.name=x", "=1",
         "config.yaml", "pipeline.py", "missing.yaml", "\x00", "é", "runs", "--", "-"]
token = st.one_of(st.sampled_from(WORDS), st.sampled_from(TRICKY[:20]),
                  st.text(max_size=12).filter(lambda t: ".." not in t and not t.startswith(
                      ("/", "~"))))


def run_in_process(argv: list[str], cwd: Path) -> tuple[int | str, str]:
    """``sandbox ARGV`` in this process: the exit code (or "ran") and what went to stderr."""
    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with mock.patch("sandbox.harness.pool.run_jobs", side_effect=WouldRun), \
                mock.patch.dict(os.environ, {"SANDBOX_HOME": str(cwd / "home")}), \
                open(os.devnull) as stdin, mock.patch.object(sys, "stdin", stdin), \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code: int | str = main(argv)
            except SystemExit as done:  # argparse: --help, usage errors
                code = done.code if isinstance(done.code, int) else 2
            except WouldRun:
                code = "ran"
    finally:
        os.chdir(previous)
    return code, err.getvalue()


@FAST
@given(command=st.sampled_from(COMMANDS), words=st.lists(token, max_size=6),
       catalog_too=st.booleans())
def test_any_command_line_exits_0_1_or_2_with_one_message(tmp_path_factory, command, words,
                                                          catalog_too):
    cwd = tmp_path_factory.mktemp("cli")
    (cwd / "config.yaml").write_text("optimizer:\n  lr: 3.0\n")
    (cwd / "pipeline.py").write_text("def train(cfg, data, run):\n    return None\n")
    argv = [command, *words] + (["--scenarios", str(FIXTURE_SCENARIOS)] if catalog_too else [])
    started = time.monotonic()
    code, stderr = run_in_process(argv, cwd)
    assert time.monotonic() - started < 10, argv
    assert code in (0, 1, 2, "ran"), (argv, code, stderr)
    assert "Traceback" not in stderr and "internal error" not in stderr, (argv, stderr)
    if code == 2:
        first, *rest = stderr.strip().splitlines() or [""]
        assert first.startswith("sandbox"), (argv, stderr)
        assert all(line.startswith("  ") for line in rest), (argv, stderr)  # a listed problem
    assert peak_rss_mb() < 2048


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=keys.filter(lambda k: "\x00" not in k),  # no OS can pass NUL in an argument
       raw=st.sampled_from(TRICKY))
def test_the_real_cli_refuses_bad_overrides_in_bounded_time_and_memory(key, raw):
    """The same refusals through a real process, capped at 1 GiB of address space beyond
    the interpreter's own: a refusal must come back fast, small and in one message."""
    with contextlib.suppress(ConfigError):
        config.resolve(TINY, overrides=[f"{key}={raw}"])
        return  # accepted: it would train, which other tests cover

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", "verify", "tiny-v1", "--scenarios",
         str(FIXTURE_SCENARIOS), "--set", f"{key}={raw}"],
        capture_output=True, text=True, cwd=ROOT, timeout=30, preexec_fn=cap_memory,
        env={**os.environ, "SANDBOX_HOME": os.devnull + "-no-home"})
    assert time.monotonic() - started < 20
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("sandbox verify: ") and "Traceback" not in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("argv", [["verify", "tiny-v1", "--seeds", "-3"],
                                  ["drill", "--count", "-1"], ["show", "\x00"],
                                  ["check", "\x00"], ["diagnose", "runs\x00"],
                                  ["diagnose", "1" * 5000], ["diagnose", "README.md/x"]])
def test_known_awkward_arguments_are_refused(tmp_path, argv):
    code, stderr = run_in_process([*argv, "--scenarios", str(FIXTURE_SCENARIOS)], tmp_path)
    assert code == 2, stderr
