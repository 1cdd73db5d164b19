from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sandbox import catalog
from sandbox.errors import ScenarioFormatError, ScenarioNotFound

from .conftest import FIXTURE_SCENARIOS, ROOT


def test_every_scenario_folder_is_in_the_catalog():
    folders = sorted(p.parent.name for p in (ROOT / "scenarios").rglob("scenario.yaml"))
    assert sorted(catalog.discover()) == folders


def test_the_catalog_covers_the_model_families_and_difficulties_people_debug():
    scenarios = list(catalog.discover().values())
    tagged = {tag: sum(tag in s.tags for s in scenarios) for tag in ("recurrent", "attention",
                                                                     "cnn")}
    assert len(scenarios) >= 14
    assert tagged["recurrent"] >= 2 and tagged["attention"] >= 2 and tagged["cnn"] >= 3, tagged
    assert sum(s.difficulty == 3 for s in scenarios) >= 2


def test_the_catalog_covers_data_and_evaluation_bugs_on_images_and_regression():
    """Issue 11's shape of the catalog: 24 scenarios or more, image CNNs fed (N, C, H, W),
    two regressions, classification scored by what the task needs, not only accuracy."""
    import yaml
    scenarios = list(catalog.discover().values())
    data = {s.id: yaml.safe_load(s.config_path.read_text())["data"]["name"]
            for s in scenarios}
    images = [s.id for s in scenarios  # digits are (N, 1, 8, 8) images
              if "cnn" in s.tags and data[s.id] in ("digits", "stock_cards")]
    assert len(scenarios) >= 24
    assert len(images) >= 3, images
    assert sum(s.task == "regression" for s in scenarios) >= 2
    assert {s.criteria.metric for s in scenarios if s.task == "classification"} - {
        "accuracy"}
    assert sum(s.difficulty == 3 for s in scenarios) >= 4


def test_unknown_id_suggests_the_closest():
    with pytest.raises(ScenarioNotFound, match="Did you mean exploding-lr-v2"):
        catalog.get("explodng-lr-v2")


def test_id_without_version_finds_the_only_version():
    assert catalog.get("data-leakage").id == "data-leakage-v2"


def test_user_folder_adds_scenarios():
    assert "tiny-v1" in catalog.discover([FIXTURE_SCENARIOS])
    assert "tiny-v1" not in catalog.discover()


def test_missing_user_folder_is_bad_input(tmp_path: Path):
    with pytest.raises(ScenarioNotFound, match="no such folder"):
        catalog.discover([tmp_path / "nope"])


def _copy_tiny(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-v1"
    shutil.copytree(FIXTURE_SCENARIOS / "tiny-v1", folder)
    return folder


def test_duplicate_ids_are_refused(tmp_path: Path):
    _copy_tiny(tmp_path / "a")
    _copy_tiny(tmp_path / "b")
    with pytest.raises(ScenarioFormatError, match="defined twice"):
        catalog.discover([tmp_path / "a", tmp_path / "b"])


def test_metadata_problems_are_collected_together(tmp_path: Path):
    folder = _copy_tiny(tmp_path)
    meta = folder / "scenario.yaml"
    text = meta.read_text().replace("hints: [one, two, three]", "hints: [one, two]")
    text = text.replace("difficulty: 1", "difficulty: 5").replace("title:", "name:")
    meta.write_text(text)
    (folder / "solution" / "config.yaml").unlink()
    with pytest.raises(ScenarioFormatError) as error:
        catalog.load_scenario(folder)
    message = str(error.value)
    assert "missing key 'title'" in message
    assert "difficulty must be 1, 2 or 3, not 5" in message
    assert "hints must be a list of exactly three progressive hints" in message
    assert "the folder has no solution/ with the reference fix" in message


def test_id_must_match_folder_and_carry_a_version(tmp_path: Path):
    folder = _copy_tiny(tmp_path)
    meta = folder / "scenario.yaml"
    meta.write_text(meta.read_text().replace("id: tiny-v1", "id: tiny"))
    with pytest.raises(ScenarioFormatError) as error:
        catalog.load_scenario(folder)
    assert "id 'tiny' differs from the folder name 'tiny-v1'" in str(error.value)
    assert "the id must end in a version" in str(error.value)


def test_unknown_criterion_is_named(tmp_path: Path):
    folder = _copy_tiny(tmp_path)
    meta = folder / "scenario.yaml"
    meta.write_text(meta.read_text().replace("  max_steps: 100", "  max_steps: 100\n  speed: 3"))
    with pytest.raises(ScenarioFormatError, match=r"verify\.speed is not a known criterion"):
        catalog.load_scenario(folder)


