"""The description of one seed's run, shared by the parent and the child; torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any


@dataclass(frozen=True)
class Job:
    """Everything a child needs, picklable."""

    scenario_id: str
    seed: int
    pipeline_path: str
    config: dict[str, Any]
    device: str
    run_dir: str
    serve_batch_size: int
    memory_limit_mb: int
    telemetry_cadence: int = 25


def child_main(job: Job, conn: Connection) -> None:
    """Process target. The worker (and torch) is already imported in the forkserver that
    forks the children, so this import is free there; the parent never pays for it.
    """
    from .worker import run_seed

    run_seed(job, conn)
