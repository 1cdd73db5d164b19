"""The user's home folder and the workspaces in it.

``sandbox start ID`` copies a scenario's editable files into ``<home>/<id>/``, where the
home is ``./workspace`` or ``$SANDBOX_HOME``. The home also holds the history database
and ``.backups/``. A workspace is the user's work: nothing here ever overwrites a file
in it without first copying the whole folder into a timestamped backup. Nothing here
imports torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from .catalog import Scenario
from .errors import ConfigError, SandboxError
from .history import HINT_PENALTY_S

TICKET = "TICKET.md"
ROOT_CAUSE_NOTE = ("The verifier measures what actually runs (the model's size, the samples "
                   "gradients flowed back to, what the model trained and validated on, how "
                   "predict() serves), so a fix must remove the cause, not mask the symptom.")
META = ".sandbox.json"


def home_dir() -> Path:
    return Path(os.environ.get("SANDBOX_HOME", "workspace"))


def ensure_home(home: Path) -> Path:
    """Create the home folder, or say plainly why it cannot be."""
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the sandbox home {home}: {exc.strerror}. "
                          "Set SANDBOX_HOME to a folder you can write.") from None
    return home


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Workspace:
    """``<home>/<scenario id>/``: the editable files, the ticket and a small meta file."""

    scenario: Scenario
    home: Path

    @property
    def root(self) -> Path:
        return self.home / self.scenario.id

    def exists(self) -> bool:
        return (self.root / META).is_file() or any(
            (self.root / name).is_file() for name in self.scenario.editable)

    def files(self) -> list[Path]:
        """The editable files as they are in the workspace now (a deleted one is left out)."""
        return [self.root / n for n in self.scenario.editable if (self.root / n).is_file()]

    def shipped(self, name: str) -> Path:
        return self.scenario.path / name

    def edited(self) -> list[str]:
        """Editable files that differ from the shipped ones (or were deleted)."""
        changed = []
        for name in self.scenario.editable:
            mine = self.root / name
            if not mine.is_file() or _sha(mine) != _sha(self.shipped(name)):
                changed.append(name)
        return changed

    def created_at(self) -> float | None:
        try:
            return float(json.loads((self.root / META).read_text())["created_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def create(self) -> None:
        """Copy the editable files and write the ticket; refuses to touch an existing one."""
        if self.exists():
            raise SandboxError(f"{self.root} already exists; it is never overwritten "
                               "(use --reset to back it up and start over).")
        ensure_home(self.home)
        self.root.mkdir(parents=True, exist_ok=True)
        for name in self.scenario.editable:
            target = self.root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.shipped(name), target)
        (self.root / TICKET).write_text(ticket(self.scenario, self.root), encoding="utf-8")
        meta = {"scenario": self.scenario.id, "created_at": time.time(),
                "shipped": {n: _sha(self.shipped(n)) for n in self.scenario.editable}}
        (self.root / META).write_text(json.dumps(meta, indent=2))

    def backup(self) -> Path:
        """Copy the whole workspace to ``<home>/.backups/<id>/<timestamp>/``."""
        parent = self.home / ".backups" / self.scenario.id
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1, 1000):
            target = parent / (stamp if n == 1 else f"{stamp}-{n}")
            if not target.exists():
                parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(self.root, target)
                return target
        raise SandboxError(f"could not find a free backup folder under {parent}")

    def reset(self) -> Path | None:
        """Back the workspace up (when there is one), then lay down fresh shipped files."""
        saved = self.backup() if self.exists() else None
        if saved is not None:
            for name in (*self.scenario.editable, TICKET, META):
                (self.root / name).unlink(missing_ok=True)
        self.create()
        return saved

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """What watch mode compares: each editable file's modification time and size."""
        stamps = {}
        for path in self.files():
            st = path.stat()
            stamps[path.name] = (st.st_mtime_ns, st.st_size)
        return stamps

    def candidate(self):
        """The workspace as a verifiable candidate: its pipeline.py and config.yaml where
        the scenario lets the user edit them, the shipped ones otherwise.
        """
        from .harness import candidate

        if not self.exists():
            raise ConfigError(f"no workspace for {self.scenario.id} under {self.home}; "
                              f"`sandbox start {self.scenario.id}` makes one.")
        missing = [n for n in self.scenario.editable if not (self.root / n).is_file()]
        if missing:
            raise ConfigError(f"{self.root} has no {', '.join(missing)} (deleted?). Restore "
                              f"it, or `sandbox start {self.scenario.id} --reset` for fresh "
                              "files (the folder is backed up first).")
        pipeline = self.root / "pipeline.py" if "pipeline.py" in self.scenario.editable else None
        config = self.root / "config.yaml" if "config.yaml" in self.scenario.editable else None
        chosen = candidate.make(self.scenario, pipeline_file=pipeline, config_file=config)
        return dataclasses.replace(chosen, label="workspace",
                                   description=f"your workspace {self.root}")


def ticket(scenario: Scenario, root: Path) -> str:
    """TICKET.md: the brief as a teammate would file it, plus how to work on it."""
    locked = ", ".join(scenario.locked) or "nothing"
    return (
        f"# {scenario.title}\n\n"
        f"Scenario `{scenario.id}`, difficulty {scenario.difficulty} of 3.\n\n"
        f"{scenario.brief}\n\n"
        "## Rules\n\n"
        f"- Edit {', '.join(f'`{n}`' for n in scenario.editable)} in this folder.\n"
        f"- Locked (the fix must not change them): {locked}.\n"
        f"- A fix passes when every seed ({', '.join(map(str, scenario.seeds))}) reaches "
        f"train loss <= {scenario.criteria.train_loss_max:g}, hidden-test "
        f"{scenario.criteria.test_metric.label} {scenario.criteria.test_required()}, and a "
        "validation score within "
        f"{scenario.criteria.val_tolerance:g} of the test score, within "
        f"{scenario.criteria.max_samples} training samples. {ROOT_CAUSE_NOTE}\n\n"
        "## Commands\n\n"
        f"- `sandbox verify {scenario.id}`: verify this folder on every seed.\n"
        f"- `sandbox watch {scenario.id}`: verify again on every save.\n"
        f"- `sandbox hint {scenario.id}`: the next of three hints (each adds "
        f"{HINT_PENALTY_S // 60} minutes to your time).\n"
        f"- `sandbox solution {scenario.id}`: the reference fix (marks the attempt revealed).\n"
        f"- `sandbox diagnose runs/{scenario.id}`: what the curves say.\n")
