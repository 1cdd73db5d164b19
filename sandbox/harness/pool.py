"""Runs jobs in child processes, in parallel, and turns every way a child can end into a result.

Children are forked from a forkserver that has already imported torch, so each seed
starts in milliseconds instead of paying torch's ~2.5 s import again. The grader never
imports torch and never unpickles anything a child sends: each child's pipe is read by a
thread that decodes JSON messages and checks them (``protocol``), so a child that sends
garbage, floods the pipe or stalls mid-message cannot stop the grader from enforcing the
time and memory limits.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from . import processes, protocol
from .job import Job, child_main

ProgressFn = Callable[[Job, str, Any], None]
ServeFn = Callable[[Job], dict[str, Any]]
POLL_S = 0.1


@dataclass
class _Active:
    job: Job
    process: mp.process.BaseProcess
    conn: Connection
    deadline: float
    reader: threading.Thread | None = None
    result: dict[str, Any] | None = None
    served: bool = False


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
    ctx.set_forkserver_preload(["sandbox.harness.server_guard", "sandbox.harness.worker"])
    with processes.starting_servers():  # they never hold the user's stdout or outlive us
        forkserver.ensure_running()
    return ctx


def default_parallelism(n_jobs: int) -> int:
    configured = os.environ.get("SANDBOX_JOBS")
    limit = int(configured) if configured and configured.isdigit() else (os.cpu_count() or 1)
    return max(1, min(n_jobs, limit))


def run_jobs(jobs: list[Job], time_limit_s: float, on_event: ProgressFn | None = None,
             serve: ServeFn | None = None, parallel: int | None = None) -> list[dict[str, Any]]:
    """Run every job; results come back in the order of ``jobs``.

    ``serve(job)`` is called when a child reports that ``train()`` returned; it writes the
    hidden inputs and returns the reply that tells the child where they are.
    """
    ctx = _context()
    notify = on_event or (lambda job, kind, payload: None)
    parallel = parallel or default_parallelism(len(jobs))
    pending = list(jobs)
    active: list[_Active] = []
    results: dict[int, dict[str, Any]] = {}
    inbox: queue.Queue[tuple[_Active, str, Any]] = queue.Queue()
    try:
        while pending or active:
            while pending and len(active) < parallel:
                active.append(_start(ctx, pending.pop(0), time_limit_s, inbox))
                notify(active[-1].job, "started", None)
            _deliver(inbox, notify, serve, timeout=POLL_S)
            for item in list(active):
                finished = _check(item, time_limit_s, lambda: _deliver(inbox, notify, serve))
                if finished is not None:
                    active.remove(item)
                    results[id(item.job)] = finished
                    notify(item.job, "finished", finished)
    finally:
        for item in active:  # interrupted (Ctrl-C): leave no orphans behind
            _kill(item)
        processes.sweep_session()
    return [results[id(job)] for job in jobs]


def _start(ctx: mp.context.BaseContext, job: Job, time_limit_s: float,
           inbox: queue.Queue) -> _Active:
    ours, theirs = ctx.Pipe(duplex=True)
    process = ctx.Process(target=child_main, args=(job, theirs), daemon=True,
                          name=f"sandbox-seed{job.seed}")
    process.start()
    processes.reaper.watch(process.pid)
    theirs.close()
    item = _Active(job, process, ours, time.monotonic() + time_limit_s)
    item.reader = threading.Thread(target=_read, args=(item, inbox), daemon=True)
    item.reader.start()
    return item


def _read(item: _Active, inbox: queue.Queue) -> None:
    """One child's pipe, message by message, until its result or its end."""
    try:
        while True:
            raw = item.conn.recv_bytes(protocol.MAX_MESSAGE_BYTES)
            message = protocol.decode(raw)
            inbox.put((item, "message", message))
            if message["kind"] == "result":
                return
    except protocol.MalformedMessage as exc:
        inbox.put((item, "malformed", str(exc)))
    except OSError as exc:  # includes a message over the size limit
        if "bad message length" in str(exc):
            inbox.put((item, "malformed", "a message over "
                       f"{protocol.MAX_MESSAGE_BYTES // 2**20} MiB"))
    except EOFError:
        pass


def _deliver(inbox: queue.Queue, notify: ProgressFn, serve: ServeFn | None,
             timeout: float = 0.0) -> None:
    """Handle what the children said since last time, waiting up to ``timeout`` for it."""
    try:
        item, kind, payload = inbox.get(timeout=timeout) if timeout else inbox.get_nowait()
    except queue.Empty:
        return
    while True:
        if item.result is None:
            _handle(item, kind, payload, notify, serve)
        try:
            item, kind, payload = inbox.get_nowait()
        except queue.Empty:
            return


def _handle(item: _Active, kind: str, payload: Any, notify: ProgressFn,
            serve: ServeFn | None) -> None:
    if kind == "malformed":
        item.result = _ended(item.job, "malformed", "sent the grader a message it could not "
                             f"accept ({payload}); nothing it sent was used")
        _kill(item)
    elif payload["kind"] == "progress":
        notify(item.job, "progress", (payload["step"], payload["loss"]))
    elif payload["kind"] == "trained" and not item.served:
        item.served = True
        reply = serve(item.job) if serve is not None else {"kind": "serve", "inputs": ""}
        with contextlib.suppress(OSError):  # the child is gone; _check says how it ended
            item.conn.send_bytes(protocol.encode(reply))
    elif payload["kind"] == "result":
        item.result = {k: v for k, v in payload.items() if k != "kind"}
        item.result.update(seed=item.job.seed, run_dir=item.job.run_dir)


def _check(item: _Active, time_limit_s: float,
           drain: Callable[[], None]) -> dict[str, Any] | None:
    """The job's result if it has ended one way or another, else None."""
    if item.result is None and not item.process.is_alive():
        if item.reader is not None:  # its last words may still be in the pipe
            item.reader.join(timeout=5)
        drain()
    if item.result is not None:
        item.process.join(timeout=5)
        _kill(item)
        return item.result
    if not item.process.is_alive():
        item.process.join(timeout=1)
        return _ended(item.job, "crashed", _death(item.process.exitcode))
    if time.monotonic() > item.deadline:
        _kill(item)
        return _ended(item.job, "hung", f"did not finish within the time limit of "
                      f"{time_limit_s:g} s and was stopped (an endless loop, or far too "
                      "much work for the budget)")
    rss_mb = _rss_mb(item.process.pid)
    if rss_mb is not None and rss_mb > item.job.memory_limit_mb:
        _kill(item)
        return _ended(item.job, "out-of-memory", f"used {rss_mb:.0f} MiB, over the memory "
                      f"limit of {item.job.memory_limit_mb} MiB, and was stopped")
    return None


def _ended(job: Job, status: str, error: str) -> dict[str, Any]:
    """The result of a child that could not report one itself."""
    return {"status": status, "error": error, "seed": job.seed, "run_dir": job.run_dir,
            "series": {}, "steps": None, "samples": None}


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


def _kill(item: _Active) -> None:
    """The seed's whole process group: the seed and anything its code started."""
    processes.kill_group(item.process.pid)
    if item.process.is_alive():
        item.process.kill()
        item.process.join(timeout=5)
    item.conn.close()
