"""Faults in the home and the workspaces, made with real files and the real CLI: links
planted where ``start`` writes, links, loops, FIFOs and sockets in a backup, a file where
a folder belongs, scenarios whose ``editable`` reaches outside, unusable homes, a full
disk. Successful ``start`` runs train the fixture scenario (seconds), so most cases fail
before that or call :mod:`sandbox.drills` in-process."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import catalog, checker, drills
from sandbox.errors import EXIT_BAD_INPUT, SandboxError, ScenarioFormatError
from sandbox.files import copy_tree
from sandbox.history import History
from sandbox.home import META, TICKET, Workspace

from .conftest import FIXTURE_SCENARIOS, ROOT, run_cli

TINY = catalog.get("tiny-v1", [FIXTURE_SCENARIOS])
SCENARIOS = ("--scenarios", str(FIXTURE_SCENARIOS))
ROOT_SKIP = "runs as root, and root writes into a chmod 0o555 folder anyway"


def cli(home: Path | str, *args: str, cwd: Path | None = None):
    """The real CLI with this home (``""``: set but empty) and run logs beside it."""
    runs = (Path(home) if str(home) else Path(cwd or ROOT)).parent / "runs"
    return run_cli(*args, cwd=cwd, timeout=180,
                   env={"SANDBOX_HOME": str(home), "SANDBOX_LOGDIR": str(runs)})


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder`` without following links: kind, link target or bytes,
    modification time. Equal snapshots mean nothing was written, replaced or removed."""
    found = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            found[str(path.relative_to(folder))] = ("link", os.readlink(path))
        elif stat.S_ISREG(st.st_mode):
            found[str(path.relative_to(folder))] = ("file", path.read_bytes(), st.st_mtime_ns)
        else:
            found[str(path.relative_to(folder))] = (stat.S_IFMT(st.st_mode),)
    return found


def backups(home: Path) -> list[Path]:
    folder = home / ".backups" / TINY.id
    return sorted(folder.iterdir()) if folder.is_dir() else []


# 1. Links planted at the names `start` writes.

def test_start_replaces_planted_links_instead_of_writing_through_them(tmp_path):
    home, outside = tmp_path / "home", tmp_path / "outside"
    workspace = home / TINY.id
    workspace.mkdir(parents=True)
    outside.mkdir()
    (outside / "notes.md").write_text("my notes\n")
    links = {TICKET: outside / "notes.md", "config.yaml": outside / "created.yaml",
             META: outside / "meta.json"}
    for name, target in links.items():
        (workspace / name).symlink_to(target)

    result = cli(home, "start", TINY.id, *SCENARIOS, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in outside.iterdir()] == ["notes.md"]  # nothing created outside
    assert (outside / "notes.md").read_text() == "my notes\n"
    for name in links:
        assert not (workspace / name).is_symlink() and (workspace / name).is_file()
    assert (workspace / "config.yaml").read_bytes() == TINY.config_path.read_bytes()
    [saved] = backups(home)
    assert f"backed up to {saved}" in result.stdout
    assert {n: os.readlink(saved / n) for n in links} == {n: str(t) for n, t in links.items()}


def test_resuming_a_workspace_of_links_writes_nothing(tmp_path):
    """Editable files that are links to the user's own files make a workspace; `start`
    resumes it and writes nothing there, a planted TICKET.md link included."""
    home, outside = tmp_path / "home", tmp_path / "outside"
    workspace = home / TINY.id
    workspace.mkdir(parents=True)
    outside.mkdir()
    for name in ("pipeline.py", TICKET):
        (outside / name).write_text(f"my {name}\n")
        (workspace / name).symlink_to(outside / name)
    before, mine = snapshot(workspace), snapshot(outside)
    result = cli(home, "start", TINY.id, *SCENARIOS)
    assert result.returncode == 0, result.stderr
    assert "Resuming" in result.stdout
    assert snapshot(workspace) == before and snapshot(outside) == mine


@pytest.mark.parametrize("kind", ["link", "file"])
@pytest.mark.parametrize("reset", [False, True])
def test_a_workspace_that_is_a_link_or_a_file_is_refused(tmp_path, kind, reset):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    workspace = home / TINY.id
    if kind == "link":
        workspace.symlink_to(elsewhere)
    else:
        workspace.write_text("a file, not a folder\n")
    result = cli(home, "start", TINY.id, *SCENARIOS, *(["--reset"] if reset else []))
    assert result.returncode == 2, result.stderr
    assert "internal error" not in result.stderr
    assert f"the workspace {workspace} is a" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(elsewhere.iterdir()) == [] and not (home / ".backups").exists()
    if kind == "file":
        assert workspace.read_text() == "a file, not a folder\n"


def test_a_folder_where_a_file_goes_is_refused_before_anything_changes(tmp_path):
    log = History.in_home(tmp_path)
    first = drills.start(TINY, tmp_path, log)
    root = first.workspace.root
    (root / "config.yaml").write_text("my edits\n")
    (root / TICKET).unlink()
    (root / TICKET).mkdir()
    (root / TICKET / "notes.txt").write_text("mine\n")
    before = snapshot(root)
    with pytest.raises(SandboxError, match=f"{root / TICKET} is a folder") as caught:
        drills.start(TINY, tmp_path, log, reset=True)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert snapshot(root) == before and backups(tmp_path) == []
    assert log.latest(TINY.id).id == first.attempt.id


def test_create_refuses_a_link_at_a_name_it_writes(tmp_path):
    """Only reset replaces (after a backup); create never does, not even a dangling link."""
    ws = Workspace(TINY, tmp_path)
    ws.root.mkdir()
    (ws.root / TICKET).symlink_to(tmp_path / "nowhere")
    with pytest.raises(SandboxError, match="never overwritten"):
        ws.create()
    assert (ws.root / TICKET).is_symlink() and not (tmp_path / "nowhere").exists()


# 2. Backups copy links as links, never recurse through them, never open special files.

def test_reset_backs_up_links_as_links_and_leaves_fifos_and_sockets_out(tmp_path):
    home, big = tmp_path / "home", tmp_path / "big"
    big.mkdir()
    (big / "data.bin").write_bytes(os.urandom(1 << 20))
    Workspace(TINY, home).create()
    root = home / TINY.id
    (root / "config.yaml").write_text("my edits\n")
    (root / "data").symlink_to(big)
    (root / "loop").symlink_to(".")
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("look at the lr\n")
    os.mkfifo(root / "pipe")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "sock"))
    try:
        result = cli(home, "start", TINY.id, "--reset", *SCENARIOS, "--device", "cpu")
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    [saved] = backups(home)
    assert os.readlink(saved / "data") == str(big) and os.readlink(saved / "loop") == "."
    assert (saved / "config.yaml").read_text() == "my edits\n"
    assert (saved / "notes" / "todo.txt").read_text() == "look at the lr\n"
    assert not os.path.lexists(saved / "pipe") and not os.path.lexists(saved / "sock")
    copied = sum(p.lstat().st_size for p in saved.rglob("*"))
    assert copied < 100_000  # the 1 MiB behind the link was not copied
    assert (root / "config.yaml").read_bytes() == TINY.config_path.read_bytes()
    assert stat.S_ISFIFO((root / "pipe").lstat().st_mode)  # not ours: left alone


def test_copy_tree_walks_nested_folders_and_copies_loops_as_links(tmp_path):
    source, target = tmp_path / "source", tmp_path / "target"
    nested = source / "/".join(["d"] * 50)
    nested.mkdir(parents=True)
    (nested / "leaf.txt").write_text("leaf\n")
    (nested / "up").symlink_to("../..")
    (source / "loop").symlink_to(".")
    (source / "self").symlink_to("self")
    target.mkdir()
    assert copy_tree(source, target) == []
    copied = target / "/".join(["d"] * 50)
    assert (copied / "leaf.txt").read_text() == "leaf\n"
    assert os.readlink(copied / "up") == "../.."
    assert [os.readlink(target / n) for n in ("loop", "self")] == [".", "self"]


# 3. A scenario's editable entries must stay inside the scenario and the workspace.

def _edit_editable(folder: Path, entries: str) -> None:
    meta = folder / "scenario.yaml"
    text = meta.read_text()
    assert "editable: [config.yaml, pipeline.py]" in text
    meta.write_text(text.replace("editable: [config.yaml, pipeline.py]", f"editable: {entries}"))


def _outside_cases(tiny: Path) -> dict[str, str]:
    """Each bad entry and the phrase its problem must contain, with real files behind them
    so that the old code would have copied something."""
    outside = tiny.parent / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text("secret: 1\n")
    (tiny.parent / "up.yaml").write_text("up: 1\n")
    (tiny / "sub").symlink_to(outside)
    (tiny / "linked.yaml").symlink_to(outside / "secret.yaml")
    return {"../up.yaml": "must be a plain file name",
            str(outside / "secret.yaml"): "must be a plain file name",
            "sub/secret.yaml": "must be a plain file name",
            "linked.yaml": "is a symbolic link",
            "missing.yaml": "is not a file in the scenario folder",
            TICKET: "is a file the workspace writes itself",
            "config.yaml": "is listed more than once"}


def test_the_loader_and_the_checker_refuse_editable_entries_that_leave_the_folder(tiny):
    cases = _outside_cases(tiny)
    for entry, phrase in cases.items():
        _edit_editable(tiny, json.dumps(["config.yaml", "pipeline.py", entry]))
        with pytest.raises(ScenarioFormatError) as caught:
            catalog.load_scenario(tiny)
        message = str(caught.value)
        assert str(tiny / "scenario.yaml") in message and repr(entry) in message, message
        assert phrase in message, message
        (tiny / "scenario.yaml").write_text(
            (FIXTURE_SCENARIOS / "tiny-v1" / "scenario.yaml").read_text())
    scenario = catalog.load_scenario(tiny)
    for entry, phrase in cases.items():
        odd = dataclasses.replace(scenario, editable=("config.yaml", "pipeline.py", entry))
        [problem] = checker.check_editable(odd)
        assert phrase in problem and problem in checker.static_problems(odd)


def test_start_and_check_refuse_a_scenario_whose_editable_leaves_the_folder(tiny, tmp_path):
    (tiny.parent / "up.yaml").write_text("up: 1\n")  # what ../up.yaml names from tiny-v1/
    _edit_editable(tiny, "[config.yaml, pipeline.py, ../up.yaml]")
    home = tmp_path / "a" / "home"
    started = cli(home, "start", "tiny-v1", "--scenarios", str(tiny.parent))
    assert started.returncode == 2, started.stderr
    assert "'../up.yaml'" in started.stderr and "internal error" not in started.stderr
    assert not home.exists()  # neither <home>/up.yaml nor a workspace
    checked = cli(home, "check", str(tiny), "--logdir", str(tmp_path / "runs"))
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert "'../up.yaml'" in checked.stderr and "fair challenge" not in checked.stdout


# 4. A file that a scenario lists but does not ship is a broken scenario (exit 2).

def test_an_editable_file_missing_from_the_scenario_is_a_format_error(tiny, tmp_path):
    (tiny / "notes.md").write_text("notes\n")
    _edit_editable(tiny, "[config.yaml, pipeline.py, notes.md]")
    scenario = catalog.load_scenario(tiny)
    (tiny / "notes.md").unlink()  # gone after loading: the workspace refuses, unwritten
    ws = Workspace(scenario, tmp_path / "home")
    with pytest.raises(ScenarioFormatError, match=r"lists 'notes\.md' as editable"):
        ws.reset()
    assert not ws.root.exists()
    result = cli(tmp_path / "home", "start", "tiny-v1", "--scenarios", str(tiny.parent))
    assert result.returncode == 2, result.stderr
    assert "editable entry 'notes.md' is not a file in the scenario folder" in result.stderr
    assert "internal error" not in result.stderr


# 5. A home that cannot be used is bad input naming it, not an empty history.

def test_a_home_that_is_a_file_or_under_one_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder\n")
    for home, says in ((blocker, "is a file, not a folder"),
                       (blocker / "sub", f"cannot be created: {blocker} is a file")):
        for args in (("stats",), ("stats", "--json"), ("start", TINY.id, *SCENARIOS)):
            result = cli(home, *args)
            assert result.returncode == 2, (args, result.stdout, result.stderr)
            assert f"the sandbox home {home} {says}" in result.stderr
            assert "Nothing recorded" not in result.stdout
    assert blocker.read_text() == "not a folder\n"


def test_an_empty_sandbox_home_counts_as_unset(tmp_path):
    result = cli("", "stats", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["home"] == "workspace"
    assert list(tmp_path.iterdir()) == []  # reading creates nothing, in . least of all


@pytest.mark.skipif(os.geteuid() == 0, reason=ROOT_SKIP)
def test_a_read_only_home_folder_is_refused(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o555)
    try:
        for args in (("stats",), ("start", TINY.id, *SCENARIOS)):
            result = cli(home, *args)
            assert result.returncode == 2, result.stderr
            assert f"the sandbox home {home} is not writable by you" in result.stderr
    finally:
        home.chmod(0o755)


def in_tmpfs(prepared: Path, after: Path, *args: str, size: str = "1m",
             read_only: bool = False) -> subprocess.CompletedProcess[str]:
    """The CLI with its home on a small tmpfs of its own: ``prepared`` is copied in, the
    command runs (the file system full or read-only: real ENOSPC and EROFS, root or not),
    and the home is copied out to ``after``. The mount lives in a private mount namespace,
    so it is gone when the command ends, whatever happens.
    """
    home = prepared.parent / "mnt"
    home.mkdir()
    after.mkdir()
    script = (f'mount -t tmpfs -o size={size} tmpfs "{home}" && cp -a "{prepared}/." '
              f'"{home}/" || exit 99\n'
              + (f'mount -o remount,ro "{home}" || exit 99\n' if read_only else "")
              + f'"$@"; rc=$?; cp -a "{home}/." "{after}/"; exit $rc')
    command = [sys.executable, "-m", "sandbox", *args]
    result = subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", *command],
                            capture_output=True, text=True, cwd=ROOT, timeout=180,
                            env={**os.environ, "COLUMNS": "200", "SANDBOX_HOME": str(home),
                                 "SANDBOX_LOGDIR": str(prepared.parent / "runs")})
    if result.returncode == 99 or "unshare:" in result.stderr:
        pytest.skip(f"no private tmpfs here (needs root with CAP_SYS_ADMIN): {result.stderr}")
    return result


def test_a_read_only_file_system_home_is_refused(tmp_path):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    for args in (("stats",), ("start", TINY.id, *SCENARIOS)):
        after = tmp_path / f"after-{args[0]}"
        result = in_tmpfs(prepared, after, *args, read_only=True)
        (tmp_path / "mnt").rmdir()
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"the sandbox home {tmp_path / 'mnt'} is on a read-only file system" \
            in result.stderr
        assert list(after.iterdir()) == []


# 6. A backup that does not fit: exit 2, the workspace exactly as it was, no half backup.

def _workspace_with_edits(home: Path) -> Path:
    root = home / TINY.id
    Workspace(TINY, home).create()
    (root / "config.yaml").write_text("my edits\n")
    (root / "data").symlink_to(home.parent / "elsewhere")
    (root / "notes").mkdir()
    (root / "notes" / "big.bin").write_bytes(os.urandom(600_000))
    return root


def test_a_full_disk_during_the_backup_leaves_the_workspace_as_it_was(tmp_path, monkeypatch):
    log = History.in_home(tmp_path)
    first = drills.start(TINY, tmp_path, log)
    root = first.workspace.root
    (root / "config.yaml").write_text("my edits\n")
    (root / "data").symlink_to(tmp_path / "elsewhere")
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("mine\n")
    before = snapshot(root)
    copied = []

    def fills_up(source, target, **kwargs):
        if copied:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        copied.append(shutil.copyfile(source, target))

    monkeypatch.setattr(shutil, "copy2", fills_up)
    with pytest.raises(SandboxError) as caught:
        drills.start(TINY, tmp_path, log, reset=True)
    message = str(caught.value)
    assert caught.value.exit_code == EXIT_BAD_INPUT and "\n" not in message
    assert f"cannot back up {root} to {tmp_path / '.backups' / TINY.id}" in message
    assert "No space left on device" in message and "partial backup was removed" in message
    assert copied and snapshot(root) == before and backups(tmp_path) == []
    latest = log.latest(TINY.id)
    assert latest.id == first.attempt.id and latest.status == "open"


def test_a_real_full_disk_at_reset_exits_2_and_changes_nothing(tmp_path):
    prepared = tmp_path / "prepared"
    root = _workspace_with_edits(prepared)
    before = snapshot(root)
    after = tmp_path / "after"
    result = in_tmpfs(prepared, after, "start", TINY.id, "--reset", *SCENARIOS, size="1m")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "No space left on device" in result.stderr
    assert f"cannot back up {tmp_path / 'mnt' / TINY.id}" in result.stderr
    assert snapshot(after / TINY.id) == before
    assert list((after / ".backups" / TINY.id).iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason=ROOT_SKIP)
def test_an_unwritable_backup_folder_is_refused_before_anything_changes(tmp_path):
    home = tmp_path / "home"
    root = _workspace_with_edits(home)
    before = snapshot(root)
    parent = home / ".backups" / TINY.id
    parent.mkdir(parents=True)
    parent.chmod(0o555)
    try:
        result = cli(home, "start", TINY.id, "--reset", *SCENARIOS)
    finally:
        parent.chmod(0o755)
    assert result.returncode == 2, result.stderr
    assert f"cannot make the backup folder {parent}/" in result.stderr
    assert "Permission denied" in result.stderr
    assert snapshot(root) == before
