"""Runs jobs in child processes, in parallel, and turns every way a child can end into a result.

Children are forked from a forkserver that has already imported torch, so each seed
starts in milliseconds instead of paying torch's ~2.5 s import again. The parent never
imports torch: it waits on pipes, enforces the time limit and the memory limit, and
notices children that die without a word.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from .job import Job, child_main

ProgressFn = Callable[[Job, str, Any], None]
POLL_S = 0.1


@dataclass
class _Active:
    job: Job
    process: mp.process.BaseProcess
    conn: Connection
    deadline: float
    result: dict[str, Any] | None = None


def _context() -> mp.context.BaseContext:
    """A forkserver that imports the worker (and torch) once, before any child forks.

    Python 3.11's forkserver ignores the parent's sys.path when preloading, so a package
    run from a source tree is put on PYTHONPATH for it; a failed preload would otherwise
    silently cost every child torch's import time.
    """
    root = str(Path(__file__).resolve().parents[2])
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *filter(None, paths)])
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["sandbox.harness.worker"])
    return ctx


def default_parallelism(n_jobs: int) -> int:
    configured = os.environ.get("SANDBOX_JOBS")
    limit = int(configured) if configured and configured.isdigit() else (os.cpu_count() or 1)
    return max(1, min(n_jobs, limit))


def run_jobs(jobs: list[Job], time_limit_s: float, on_event: ProgressFn | None = None,
             parallel: int | None = None) -> list[dict[str, Any]]:
    """Run every job; results come back in the order of ``jobs``."""
    ctx = _context()
    notify = on_event or (lambda job, kind, payload: None)
    parallel = parallel or default_parallelism(len(jobs))
    pending = list(jobs)
    active: list[_Active] = []
    results: dict[int, dict[str, Any]] = {}
    try:
        while pending or active:
            while pending and len(active) < parallel:
                active.append(_start(ctx, pending.pop(0), time_limit_s))
                notify(active[-1].job, "started", None)
            wait([a.conn for a in active] + [a.process.sentinel for a in active], timeout=POLL_S)
            for item in list(active):
                finished = _check(item, time_limit_s, notify)
                if finished is not None:
                    active.remove(item)
                    results[id(item.job)] = finished
                    notify(item.job, "finished", finished)
    finally:
        for item in active:  # interrupted (Ctrl-C): leave no orphans behind
            _kill(item.process)
    return [results[id(job)] for job in jobs]


def _start(ctx: mp.context.BaseContext, job: Job, time_limit_s: float) -> _Active:
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=child_main, args=(job, sender), daemon=True,
                          name=f"sandbox-seed{job.seed}")
    process.start()
    sender.close()
    return _Active(job, process, receiver, time.monotonic() + time_limit_s)


def _check(item: _Active, time_limit_s: float, notify: ProgressFn) -> dict[str, Any] | None:
    """The job's result if it has ended one way or another, else None."""
    try:
        while item.result is None and item.conn.poll():
            kind, *payload = item.conn.recv()
            if kind == "result":
                item.result = payload[0]
            else:
                notify(item.job, kind, payload)
    except (EOFError, OSError):
        pass
    if item.result is not None:
        item.process.join(timeout=5)
        _kill(item.process)
        return item.result
    if not item.process.is_alive():
        return _ended(item.job, "crashed", _death(item.process.exitcode))
    if time.monotonic() > item.deadline:
        _kill(item.process)
        return _ended(item.job, "hung", f"did not finish within the time limit of "
                      f"{time_limit_s:g} s and was stopped (an endless loop, or far too "
                      "much work for the budget)")
    rss_mb = _rss_mb(item.process.pid)
    if rss_mb is not None and rss_mb > item.job.memory_limit_mb:
        _kill(item.process)
        return _ended(item.job, "out-of-memory", f"used {rss_mb:.0f} MiB, over the memory "
                      f"limit of {item.job.memory_limit_mb} MiB, and was stopped")
    return None


def _ended(job: Job, status: str, error: str) -> dict[str, Any]:
    return {"status": status, "error": error, "seed": job.seed, "run_dir": job.run_dir,
            "series": {}, "steps": None}


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        likely = " (the system's out-of-memory killer, most likely)" if name == "SIGKILL" else ""
        return f"died from {name}{likely} before reporting a result"
    return f"exited with code {exitcode} before reporting a result (sys.exit or os._exit?)"


def _rss_mb(pid: int | None) -> float | None:
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _kill(process: mp.process.BaseProcess) -> None:
    if process.is_alive():
        process.kill()
        process.join(timeout=5)
