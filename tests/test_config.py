from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import _yaml, catalog, config
from sandbox.errors import ConfigError

SCENARIO = catalog.get("vanishing-gradients-v2")


@pytest.mark.parametrize("text, expected", [("1e-3", 0.001), ("3E+2", 300.0), ("0.5", 0.5),
                                            ("7", 7), ("1_000", 1000), ("abc", "abc")])
def test_yaml_reads_exponents_without_a_dot_as_numbers(text, expected):
    value = _yaml.loads(text)
    assert value == expected and type(value) is type(expected)


def test_override_splits_on_the_first_equals_sign():
    assert config.parse_override("a.b=x=y") == ("a.b", "x=y")
    assert config.parse_override("optimizer.lr=1e-3") == ("optimizer.lr", 0.001)


def test_override_without_value_is_refused():
    with pytest.raises(ConfigError, match="not of the form key=value"):
        config.parse_override("optimizer.lr")


def test_valid_overrides_apply_and_ints_become_floats():
    resolved = config.resolve(SCENARIO, overrides=["optimizer.lr=1", "model.activation=relu"])
    assert resolved["optimizer"]["lr"] == 1.0 and isinstance(resolved["optimizer"]["lr"], float)
    assert resolved["model"]["activation"] == "relu"
    assert resolved["model"]["depth"] == 8


@pytest.mark.parametrize("override, message", [
    ("optimizer.lrr=0.1", "optimizer.lrr: no such key in vanishing-gradients-v2's config; "
                          "did you mean 'optimizer.lr'?"),
    ("optimizer.lr=fast", "optimizer.lr: expected a number (shipped value 0.05), got a "
                          "string 'fast'."),
    ("model.depth=2", "model.depth: locked by the scenario"),
    ("data.n=10", "data.n: locked by the scenario"),
    ("optimizer.lr=-0.1", "optimizer.lr: -0.1 is out of range; allowed 0.0 to 10.0."),
    ("model.activation=swish", "model.activation: 'swish' is not one of the allowed values"),
    ("train.val_fraction=true", "expected a number (shipped value 0.2), got a boolean True."),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError) as error:
        config.resolve(SCENARIO, overrides=[override])
    assert message in str(error.value)


def test_setting_a_locked_key_to_its_shipped_value_is_fine():
    assert config.resolve(SCENARIO, overrides=["model.depth=8"])["model"]["depth"] == 8


def test_all_problems_are_reported_together():
    with pytest.raises(ConfigError) as error:
        config.resolve(SCENARIO, overrides=["model.depth=2", "optimizer.lr=x", "nope=1"])
    assert str(error.value).count("\n  - ") == 3


def test_patch_file_may_hold_only_what_changes(tmp_path: Path):
    patch = tmp_path / "patch.yaml"
    patch.write_text("optimizer:\n  lr: 1e-2\n")
    resolved = config.resolve(SCENARIO, config.read_patch(patch))
    assert resolved["optimizer"] == {"lr": 0.01, "momentum": 0.9}


def test_patch_file_must_be_a_mapping(tmp_path: Path):
    patch = tmp_path / "patch.yaml"
    patch.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        config.read_patch(patch)


def test_patch_file_with_bad_yaml(tmp_path: Path):
    patch = tmp_path / "patch.yaml"
    patch.write_text("optimizer: [1, 2\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        config.read_patch(patch)


def test_config_is_read_only_and_suggests_keys():
    cfg = config.Config({"optimizer": {"lr": 0.1}})
    assert cfg.optimizer.lr == 0.1
    with pytest.raises(AttributeError, match="did you mean 'lr'"):
        _ = cfg.optimizer.lrr
    with pytest.raises(AttributeError, match="read-only"):
        cfg.optimizer = 1
