"""The user's home folder and the workspaces in it.

``sandbox start ID`` copies a scenario's editable files into ``<home>/<id>/``, where the
home is ``./workspace`` or ``$SANDBOX_HOME``. The home also holds the history database
and ``.backups/``. A workspace is the user's work: nothing here ever overwrites a file
in it without first copying the whole folder into a timestamped backup, and nothing is
ever written through a link planted in it. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import stat
import time
from pathlib import Path

from .catalog import Scenario
from .errors import ConfigError, SandboxError, ScenarioFormatError
from .files import Folder, copy_tree, is_regular
from .history import DB_NAME, HINT_PENALTY_S

TICKET = "TICKET.md"
ROOT_CAUSE_NOTE = ("The verifier measures what actually runs (the model's size, the samples "
                   "gradients flowed back to, what the model trained and validated on, how "
                   "predict() serves), so a fix must remove the cause, not mask the symptom.")
META = ".sandbox.json"
SET_HOME = "Set SANDBOX_HOME to a folder you can write."


def home_dir() -> Path:
    """``$SANDBOX_HOME``, or ``./workspace`` when it is unset or empty.

    An empty value counts as unset, as the XDG base-directory variables do: ``VAR=`` is how
    a shell clears a variable for one command, and taken literally it would put the history
    and the workspaces in whatever folder the user happens to stand in.
    """
    return Path(os.environ.get("SANDBOX_HOME") or "workspace")


def check_home(home: Path) -> Path:
    """Refuse a home that cannot hold workspaces and the history, creating nothing.

    Reading commands (``sandbox stats``) call this too: a home that is a file or cannot be
    written must not pass for an empty one ("nothing recorded yet"). A home that does not
    exist yet is fine when the nearest folder above it can be written.
    """
    existing = home
    while not os.path.lexists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        what = "a broken link" if existing.is_symlink() else "a file"
        where = (f"is {what}, not a folder" if existing == home
                 else f"cannot be created: {existing} is {what}")
        raise ConfigError(f"the sandbox home {home} {where}. {SET_HOME}")
    if not os.access(existing, os.W_OK | os.X_OK):
        why = ("is on a read-only file system" if _read_only(existing)
               else "is not writable by you")
        where = "" if existing == home else f" cannot be created: {existing}"
        raise ConfigError(f"the sandbox home {home}{where} {why}. {SET_HOME}")
    return home


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def ensure_home(home: Path) -> Path:
    """Create the home folder, or say plainly why it cannot be."""
    check_home(home)
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the sandbox home {home}: {exc.strerror}. "
                          f"{SET_HOME}") from None
    return home


HISTORY_FILES = tuple(DB_NAME + suffix for suffix in ("", "-wal", "-shm", "-journal"))


def set_aside(home: Path, scenario_ids: list[str]) -> tuple[Path, list[str]]:
    """Start over: move every workspace of a known scenario and the history into
    ``<home>/.backups/reset-<timestamp>/``. Returns the folder and what was moved.

    Moving is the backup: a rename within the home copies nothing, cannot fill the disk,
    and leaves each item whole (the history's write-ahead log goes with its database).
    A rename that fails stops the reset; what was moved by then is in the folder, the
    rest is where it was, and the error names both.
    """
    check_home(home)
    names = [n for n in (*scenario_ids, *HISTORY_FILES) if os.path.lexists(home / n)]
    if not names:
        raise SandboxError(f"nothing to reset in {home}: no workspace and no history yet.")
    target = _new_folder(home / ".backups", f"reset-{time.strftime('%Y%m%d-%H%M%S')}")
    moved: list[str] = []
    for name in names:
        try:
            os.rename(home / name, target / name)
        except OSError as exc:
            raise SandboxError(
                f"cannot move {home / name} into {target}: {exc.strerror}. Moved so far "
                f"(all kept there): {', '.join(moved) or 'nothing'}; the rest is untouched."
            ) from None
        moved.append(name)
    return target, moved


def _new_folder(parent: Path, name: str) -> Path:
    """A folder of that name under ``parent`` (``name-2``... if taken), made now."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SandboxError(f"cannot make the backup folder {parent}: {exc.strerror}. "
                           "Nothing was changed.") from None
    for n in range(1, 1000):
        target = parent / (name if n == 1 else f"{name}-{n}")
        try:
            target.mkdir()
            return target
        except FileExistsError:
            continue
        except OSError as exc:
            raise SandboxError(f"cannot make the backup folder {target}: {exc.strerror}. "
                               "Nothing was changed.") from None
    raise SandboxError(f"could not find a free backup folder under {parent}")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Workspace:
    """``<home>/<scenario id>/``: the editable files, the ticket and a small meta file.

    Every name the sandbox writes there is written to a fresh temporary file and renamed
    into place through a handle on the folder opened without following links, so a link
    planted at such a name is replaced, never written through, and a link in place of the
    folder itself is refused. Only :meth:`reset` replaces anything, and only after
    :meth:`backup` has copied the folder as it was (links as links).
    """

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
        """Lay down a new workspace. Refuses when anything is at a name it writes (a file,
        a link, a folder): only :meth:`reset` replaces, after backing the folder up.
        """
        ensure_home(self.home)
        self._check_folder()
        taken = [n for n in self._names() if os.path.lexists(self.root / n)]
        if self.exists() or taken:
            raise SandboxError(f"{self.root} already exists; it is never overwritten "
                               "(use --reset to back it up and start over).")
        self._write(self._fresh(), saved=None)

    def reset(self) -> Path | None:
        """Back the folder up when it holds anything, then lay down fresh files.

        Every check (the folder, the scenario's files) comes before the backup and the
        backup before any write, so a refusal or a failed backup leaves the workspace
        exactly as it was.
        """
        ensure_home(self.home)
        self._check_folder()
        fresh = self._fresh()
        saved = self.backup() if self._holds_anything() else None
        self._write(fresh, saved)
        return saved

    def backup(self) -> Path:
        """Copy the workspace as it is to ``<home>/.backups/<id>/<timestamp>/``.

        Links are copied as links and special files left out (:func:`copy_tree`). A backup
        that fails midway (a full disk) is removed; the workspace is not touched.
        """
        parent = self.home / ".backups" / self.scenario.id
        stamp = time.strftime("%Y%m%d-%H%M%S")
        untouched = f"Nothing in {self.root} was changed."
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = "a file is in the way" if exc.errno == errno.EEXIST else exc.strerror
            raise SandboxError(f"cannot make the backup folder {parent}: {why}. "
                               f"{untouched}") from None
        for n in range(1, 1000):
            target = parent / (stamp if n == 1 else f"{stamp}-{n}")
            try:
                target.mkdir()
            except FileExistsError:
                continue  # a backup made this second: take the next name
            except OSError as exc:
                raise SandboxError(f"cannot make the backup folder {target}: "
                                   f"{exc.strerror}. {untouched}") from None
            try:
                copy_tree(self.root, target)
            except OSError as exc:
                shutil.rmtree(target, ignore_errors=True)
                raise SandboxError(
                    f"cannot back up {self.root} to {target}: {exc.strerror or exc} (at "
                    f"{exc.filename}). The partial backup was removed. {untouched} Nothing is "
                    "reset without a backup; make room there and try again.") from None
            return target
        raise SandboxError(f"could not find a free backup folder under {parent}")

    def _names(self) -> tuple[str, ...]:
        """Every name in the workspace the sandbox writes."""
        return (*self.scenario.editable, TICKET, META)

    def _check_folder(self) -> None:
        """The workspace must be a real folder, or not exist yet: a file there is in the
        way, a link would send every write elsewhere, and a folder at one of the names it
        writes holds something of the user's that a file cannot replace.
        """
        try:
            mode = self.root.lstat().st_mode
        except FileNotFoundError:
            return
        except OSError as exc:
            raise SandboxError(f"cannot use the workspace {self.root}: {exc.strerror}.") \
                from None
        again = "Move it aside and start again; nothing was changed."
        if stat.S_ISLNK(mode):
            raise SandboxError(f"the workspace {self.root} is a symbolic link (to "
                               f"{os.readlink(self.root)}); the sandbox never writes through "
                               f"a link. {again}")
        if not stat.S_ISDIR(mode):
            raise SandboxError(f"the workspace {self.root} is a file, not a folder. {again}")
        for name in self._names():
            path = self.root / name
            if path.is_dir() and not path.is_symlink():
                raise SandboxError(f"{path} is a folder where the workspace needs the file "
                                   f"{name}. {again}")

    def _holds_anything(self) -> bool:
        try:
            with os.scandir(self.root) as entries:
                return any(True for _ in entries)
        except FileNotFoundError:
            return False

    def _fresh(self) -> dict[str, bytes]:
        """A fresh workspace's files, read whole before anything is written, so that a
        scenario missing one of its editable files fails before the workspace is touched.
        """
        files: dict[str, bytes] = {n: self._shipped_bytes(n) for n in self.scenario.editable}
        meta = {"scenario": self.scenario.id, "created_at": time.time(),
                "shipped": {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}}
        files[TICKET] = ticket(self.scenario, self.root).encode("utf-8")
        files[META] = json.dumps(meta, indent=2).encode("utf-8")
        return files

    def _shipped_bytes(self, name: str) -> bytes:
        path = self.shipped(name)
        why = f"{path} is missing or not a regular file"
        if is_regular(path):
            try:
                return path.read_bytes()
            except OSError as exc:
                why = f"{path}: {exc.strerror}"
        raise ScenarioFormatError(
            f"scenario {self.scenario.id} lists {name!r} as editable, but it cannot be "
            f"copied ({why}). The scenario is broken; nothing was written to the workspace.")

    def _write(self, files: dict[str, bytes], saved: Path | None) -> None:
        """Write each file by renaming a fresh one over its name in the folder's handle
        (:class:`Folder`): whatever is at the name (a link, a FIFO) is replaced, never
        followed, and a link put in place of the folder makes the open fail.
        """
        path = self.root
        try:
            self.root.mkdir(exist_ok=True)
            with Folder(self.root) as folder:
                for name, data in files.items():
                    path = self.root / name
                    folder.write(name, data)
        except OSError as exc:
            kept = (f" Your previous files were backed up to {saved} first." if saved
                    else "")
            raise SandboxError(f"cannot write the workspace file {path}: "
                               f"{exc.strerror or exc}.{kept}") from None

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
