"""Run folders named by attempt and change, and `sandbox tb`: a real TensorBoard on
127.0.0.1 over a scenario's runs, read through its HTTP API."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from sandbox import board as boards
from sandbox import catalog
from sandbox.files import Folder
from sandbox.harness.candidate import fingerprint, make
from sandbox.runs import (
    RUN_NAME_MAX,
    attempt_number,
    find_baseline,
    new_run_group,
    recorded_runs,
    run_label,
    safe_name,
)
from sandbox.verification import _write_group

from .conftest import FIXTURE_SCENARIOS, run_cli
from .terminal import Terminal

TINY = catalog.get("tiny-v1", [FIXTURE_SCENARIOS])
SCENARIOS = ["--scenarios", str(FIXTURE_SCENARIOS)]
SEQUENTIAL = '''
import torch
import torch.nn.functional as F
from torch import nn


def train(cfg, data, run):
    x, y = data.x.flatten(1).to(run.device) / 16.0, data.y.to(run.device)
    model = run.watch(nn.Sequential(nn.Linear(x.shape[1], 16), nn.ReLU(),
                                    nn.Linear(16, data.num_classes)).to(run.device))
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.optimizer.lr)
    for step, batch in enumerate(torch.randperm(len(y), device=run.device).split(64), 1):
        loss = F.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        run.log("loss/train", loss.item(), step)
    return model


def predict(model, x):
    return model(x.flatten(1) / 16.0)
'''


# -- run folder names --------------------------------------------------------------------
def test_attempts_are_numbered_per_scenario_folder_and_never_reused(tmp_path: Path):
    first = new_run_group(tmp_path, "shipped (broken)")
    assert first.name == "attempt-01 shipped (broken)" and first.is_dir()
    assert new_run_group(tmp_path, "optimizer.lr=0.02").name == "attempt-02 optimizer.lr=0.02"
    (tmp_path / "attempt-07 workspace (same as shipped)").mkdir()  # a gap: numbers go on
    (tmp_path / "attempt-08").mkdir()  # a claim left by a verification that died
    assert new_run_group(tmp_path, "x").name == "attempt-09 x"
    assert attempt_number("attempt-09 x") == 9 and attempt_number("attempt-9x") is None
    assert attempt_number("20250101-120000-shipped") is None


def test_folders_of_the_old_naming_count_towards_the_next_number(tmp_path: Path):
    for name in ("20250101-120000-shipped", "20250101-120500-shipped+set",
                 "20250101-121000-2-pipeline"):
        (tmp_path / name).mkdir()
    assert new_run_group(tmp_path, "workspace (pipeline.py edited)").name == \
        "attempt-04 workspace (pipeline.py edited)"


def test_verifications_starting_at_once_never_share_a_number(tmp_path: Path):
    made: list[Path] = []
    start = threading.Barrier(12)

    def claim(i: int) -> None:
        start.wait()
        made.extend(new_run_group(tmp_path, f"run {i} {j}") for j in range(4))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    numbers = sorted(attempt_number(p.name) for p in made)
    assert numbers == list(range(1, 49))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in made)


def test_a_run_name_says_what_changed_from_the_shipped_pipeline(tmp_path: Path):
    shipped = make(TINY)
    assert run_label(TINY, shipped) == "shipped (broken)"
    assert run_label(TINY, make(TINY, overrides=["optimizer.lr=0.02"])) == "optimizer.lr=0.02"
    assert run_label(TINY, make(TINY, overrides=["optimizer.lr=0.001"])) == \
        "shipped (--set changed nothing)"
    assert run_label(TINY, make(TINY, solution=True)) == "solution (optimizer.lr=0.3)"
    edited = tmp_path / "pipeline.py"
    edited.write_text(TINY.pipeline_path.read_text() + "\n# changed\n")
    workspace = dataclasses.replace(make(TINY, pipeline_file=edited), label="workspace")
    assert run_label(TINY, workspace) == "workspace (pipeline.py edited)"
    both = dataclasses.replace(workspace, config={**workspace.config,
                                                  "optimizer": {"lr": 0.5}})
    assert run_label(TINY, both) == "workspace (pipeline.py edited + optimizer.lr=0.5)"
    same = tmp_path / "same.py"
    same.write_text(TINY.pipeline_path.read_text())
    assert run_label(TINY, dataclasses.replace(make(TINY, pipeline_file=same),
                                               label="workspace")) == "workspace (same as shipped)"
    assert run_label(TINY, make(TINY, pipeline_file=edited)) == "pipeline pipeline.py"
    assert run_label(TINY, make(TINY, pipeline_file=edited, overrides=[
        "optimizer.lr=0.5"])) == "pipeline pipeline.py (optimizer.lr=0.5)"


def test_long_and_odd_config_changes_make_a_short_safe_name(tmp_path: Path):
    shipped = make(TINY)
    config = {**shipped.config, "optimizer": {"name": "a/b,c:d\x1b[2J\n$(rm -rf)",
                                              "lr": 0.1234567891234, "betas": [0.9, 0.999],
                                              "nesterov": True},
              "extra": {f"key{i}": i for i in range(30)}}
    label = run_label(TINY, dataclasses.replace(shipped, label="shipped+set", config=config))
    assert label == "optimizer.name=a_b_c_d_[2J__(rm -rf) optimizer.lr=0.1235 +32 more"
    folder = new_run_group(tmp_path, label)
    assert len(folder.name) <= RUN_NAME_MAX and folder.parent == tmp_path
    assert not re.search(r"[/\\,:$`'\"\x00-\x1f\x7f]", folder.name)
    assert safe_name("x" * 500) == "x" * (RUN_NAME_MAX - 3) + "..."
    assert safe_name("../..") == "_" and safe_name("a/\x00\n\tb") == "a____b"
    assert safe_name("") == "run" and safe_name(" . ") == "run"


def _record(folder: Path, candidate: str, digest: str, started: str | None = None,
            old: bool = False) -> Path:
    folder.mkdir(parents=True)
    record = {"scenario": "tiny-v1", "fingerprint": digest, "candidate": candidate}
    if not old:
        record |= {"attempt": attempt_number(folder.name), "run": folder.name,
                   "started": started, "changes": "x"}
    record["results"] = [{"seed": 0, "run_dir": str(folder / "seed0"), "mark": folder.name}]
    (folder / "record.json").write_text(json.dumps(record))
    (folder / "seed0").mkdir()
    (folder / "seed0" / "events.out.tfevents.1.host.sandbox").write_bytes(b"")
    return folder


def test_the_baseline_is_found_by_its_record_in_old_and_new_folders(tmp_path: Path):
    scenario, digest = tmp_path / "tiny-v1", fingerprint(TINY)
    _record(scenario / "20250101-120000-shipped", "shipped", digest, old=True)
    assert find_baseline(TINY, tmp_path)[0]["mark"] == "20250101-120000-shipped"
    # a folder the old glob would have taken, whose record says it ran something else
    _record(scenario / "20250102-120000-shipped", "workspace", digest, old=True)
    assert find_baseline(TINY, tmp_path)[0]["mark"] == "20250101-120000-shipped"
    _record(scenario / "attempt-03 shipped (broken)", "shipped", "0" * 16,
            "2026-01-01T10:00:00+0000")  # another version of the pipeline
    assert find_baseline(TINY, tmp_path)[0]["mark"] == "20250101-120000-shipped"
    _record(scenario / "attempt-04 whatever its name", "shipped", digest,
            "2026-01-01T11:00:00+0000")
    assert find_baseline(TINY, tmp_path)[0]["mark"] == "attempt-04 whatever its name"
    (scenario / "attempt-05 planted").mkdir()
    os.mkfifo(scenario / "attempt-05 planted" / "record.json")  # read without blocking
    assert find_baseline(TINY, tmp_path)[0]["mark"] == "attempt-04 whatever its name"
    runs = recorded_runs(scenario)
    assert [r.name for r in runs][:2] == ["20250101-120000-shipped", "20250102-120000-shipped"]
    assert {r.name: r.candidate for r in runs}["attempt-05 planted"] is None


def test_the_baseline_covers_the_candidates_seeds_or_is_not_used(tmp_path: Path):
    """A broken run on seed 0 only (an older ``start``) cannot stand beside a candidate on
    seeds 0-2: the lookup skips it, so the verification runs every broken seed itself.
    """
    scenario, digest = tmp_path / "tiny-v1", fingerprint(TINY)
    whole = _record(scenario / "attempt-01 shipped (broken)", "shipped", digest,
                    "2026-01-01T10:00:00+0000")
    record = json.loads((whole / "record.json").read_text())
    record["results"] = [{"seed": s, "mark": f"whole {s}"} for s in (2, 0, 1)]
    (whole / "record.json").write_text(json.dumps(record))
    _record(scenario / "attempt-02 shipped (broken)", "shipped", digest,
            "2026-01-01T11:00:00+0000")  # newer, seed 0 only
    newest = find_baseline(TINY, tmp_path, [0])
    assert [r["mark"] for r in newest] == ["attempt-02 shipped (broken)"]
    assert [r["mark"] for r in find_baseline(TINY, tmp_path, [0, 1, 2])] == \
        ["whole 0", "whole 1", "whole 2"]  # in the candidate's seed order
    assert find_baseline(TINY, tmp_path, [0, 3]) == []


def test_the_record_holds_the_attempt_the_folder_name_and_the_start_time(tmp_path: Path):
    shipped = make(TINY, overrides=["optimizer.lr=0.02"])
    group = new_run_group(tmp_path / "tiny-v1", run_label(TINY, shipped))
    with Folder(group) as folder:
        _write_group(folder, TINY, shipped, [{"seed": 0}], started=1_700_000_000.0)
    record = json.loads((group / "record.json").read_text())
    assert record["candidate"] == "shipped+set" and record["attempt"] == 1
    assert record["run"] == group.name == "attempt-01 optimizer.lr=0.02"
    assert record["changes"] == "optimizer.lr=0.02"
    assert re.fullmatch(r"2023-11-1\dT\d\d:\d\d:20[+-]\d{4}", record["started"])
    [run] = recorded_runs(tmp_path / "tiny-v1")
    assert run.started == 1_700_000_000.0 and run.attempt == 1


# -- the board -----------------------------------------------------------------------------
def test_the_board_names_the_broken_run_and_the_latest_attempt(tmp_path: Path):
    scenario, digest = tmp_path / "tiny-v1", fingerprint(TINY)
    with pytest.raises(boards.NoRuns, match="sandbox verify tiny-v1"):
        boards.board(TINY, tmp_path)
    _record(scenario / "attempt-01 shipped (broken)", "shipped", digest,
            "2026-01-01T10:00:00+0000")
    _record(scenario / "attempt-02 optimizer.lr=0.5", "shipped+set", digest,
            "2026-01-01T10:01:00+0000")
    _record(scenario / "attempt-03 workspace (pipeline.py edited)", "workspace", digest,
            "2026-01-01T10:02:00+0000")
    (scenario / "attempt-04").mkdir()  # claimed, nothing logged yet: not a run
    shown = boards.board(TINY, tmp_path)
    assert shown.broken.name == "attempt-01 shipped (broken)"
    assert shown.latest.name == "attempt-03 workspace (pipeline.py edited)"
    assert len(shown.runs) == 3
    [flag, spec] = shown.logdir_args(compare=True)
    assert flag == "--logdir_spec" and spec == (
        f"broken:{(scenario / 'attempt-01 shipped (broken)').resolve()},"
        f"latest:{(scenario / 'attempt-03 workspace (pipeline.py edited)').resolve()}")
    assert shown.logdir_args() == ["--logdir", str(scenario.resolve())]


def test_tb_refuses_an_unknown_scenario_no_runs_and_a_port_in_use(tmp_path: Path):
    unknown = run_cli("tb", "no-such-v1", "--logdir", str(tmp_path))
    assert unknown.returncode == 2 and len(unknown.stderr.splitlines()) == 1
    assert "no-such-v1" in unknown.stderr
    empty = run_cli("tb", "tiny-v1", *SCENARIOS, "--logdir", str(tmp_path))
    assert empty.returncode == 2 and len(empty.stderr.splitlines()) == 1
    assert "no runs of tiny-v1" in empty.stderr and "`sandbox verify tiny-v1`" in empty.stderr
    _record(tmp_path / "tiny-v1" / "attempt-01 shipped (broken)", "shipped",
            fingerprint(TINY), "2026-01-01T10:00:00+0000")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_cli("tb", "tiny-v1", *SCENARIOS, "--logdir", str(tmp_path),
                       "--port", str(port))
    assert busy.returncode == 2 and len(busy.stderr.splitlines()) == 1
    assert f"port {port} is already in use" in busy.stderr
    assert "Traceback" not in unknown.stderr + empty.stderr + busy.stderr


# -- a real TensorBoard --------------------------------------------------------------------
@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A logdir written by real verifications: the broken baseline, an attempt with a
    Sequential model, then a --set attempt."""
    root = tmp_path_factory.mktemp("board")
    pipeline = root / "sequential.py"
    pipeline.write_text(SEQUENTIAL)
    logdir = root / "runs"
    common = [*SCENARIOS, "--device", "cpu", "--logdir", str(logdir)]
    mine = run_cli("verify", "tiny-v1", "--pipeline", str(pipeline), *common)
    assert mine.returncode in (0, 1), mine.stderr
    fixed = run_cli("verify", "tiny-v1", "--set", "optimizer.lr=0.5", *common)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    return logdir


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _wait_for(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")  # a zombie has exited


def _serve(logged: Path, *extra: str) -> tuple[Terminal, str, int]:
    tb = Terminal("tb", "tiny-v1", *SCENARIOS, "--logdir", str(logged), *extra,
                  cwd=logged.parent, env={})
    shown = tb.expect("Ctrl-C stops TensorBoard", timeout=120)
    url = re.search(r"http://127\.0\.0\.1:\d+/", shown).group(0)
    [child] = [pid for pid in _children(tb.proc.pid)
               if b"tensorboard" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    return tb, url, child


def _stopped_by_ctrl_c(tb: Terminal, url: str, child: int) -> None:
    tb.interrupt()  # SIGINT to the terminal's foreground group, as Ctrl-C sends it
    assert tb.wait() == 130
    assert "TensorBoard stopped." in tb.seen and "Traceback" not in tb.seen
    assert _wait_for(lambda: _gone(child), 15), "the TensorBoard child outlived `sandbox tb`"
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "data/runs", timeout=5)


@pytest.mark.slow
@pytest.mark.xdist_group("tensorboard")  # one worker starts the verifications once
def test_tensorboard_shows_named_runs_layer_tags_and_the_log_scale_loss(logged: Path):
    runs_on_disk = sorted(p.name for p in (logged / "tiny-v1").iterdir())
    assert runs_on_disk == ["attempt-01 shipped (broken)", "attempt-02 pipeline sequential.py",
                            "attempt-03 optimizer.lr=0.5"]
    tb, url, child = _serve(logged)
    try:
        assert "broken run:     attempt-01 shipped (broken)" in tb.seen
        assert "latest attempt: attempt-03 optimizer.lr=0.5" in tb.seen
        assert tb.seen.count("http://") == 1
        want = {"attempt-01 shipped (broken)/seed0", "attempt-01 shipped (broken)/seed1",
                "attempt-02 pipeline sequential.py/seed0",
                "attempt-02 pipeline sequential.py/seed1", "attempt-03 optimizer.lr=0.5/seed0",
                "attempt-03 optimizer.lr=0.5/seed1"}
        runs = _wait_for(lambda: want <= set(_get(url + "data/runs")) and _get(url + "data/runs"))
        assert set(runs) == want, runs
        tags = _wait_for(lambda: (lambda t: len(t) == len(want) and t)(
            _get(url + "data/plugin/scalars/tags")))
        sequential = set(tags["attempt-02 pipeline sequential.py/seed0"])
        assert {"grad_norm/fc1", "grad_norm/fc2", "update_ratio/fc1", "update_ratio/fc2",
                "dead_units/relu1", "loss/train", "loss/train_log10"} <= sequential
        assert not any(re.search(r"/\d+$", tag) for tag in sequential), sequential
        assert {"grad_norm/fc", "loss/train_log10"} <= set(
            tags["attempt-01 shipped (broken)/seed0"])
        points = _get(url + "data/plugin/scalars/scalars?run=" + urllib.request.quote(
            "attempt-01 shipped (broken)/seed0") + "&tag=loss/train_log10")
        assert 0.0 < points[0][2] < 0.5  # log10 of ln(10), the untrained loss
    finally:
        try:
            _stopped_by_ctrl_c(tb, url, child)
        finally:
            tb.close()


@pytest.mark.slow
@pytest.mark.xdist_group("tensorboard")
def test_tb_compare_shows_only_the_broken_run_and_the_latest_attempt(logged: Path):
    tb, url, child = _serve(logged, "--compare")
    try:
        assert "broken:         attempt-01 shipped (broken)" in tb.seen
        assert "latest:         attempt-03 optimizer.lr=0.5" in tb.seen
        want = {"broken/seed0", "broken/seed1", "latest/seed0", "latest/seed1"}
        runs = _wait_for(lambda: want <= set(_get(url + "data/runs")) and _get(url + "data/runs"))
        assert set(runs) == want, runs
        tags = _wait_for(lambda: (lambda t: len(t) == len(want) and t)(
            _get(url + "data/plugin/scalars/tags")))
        assert "loss/train_log10" in tags["broken/seed0"]
    finally:
        try:
            _stopped_by_ctrl_c(tb, url, child)
        finally:
            tb.close()
