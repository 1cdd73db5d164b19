"""The description of one seed's run, shared by the grader and the seed's process; torch-free.

A Job goes from the grader to the seed's process and holds nothing secret: not the
hidden test split, not its salt. The serving inputs are written, to a file of the
grader's choosing, only after ``train()`` has returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

PROBE_SIZE = 32  # hidden inputs served twice, with different companions (batch dependence)


@dataclass(frozen=True)
class Job:
    """Everything a seed's process needs, picklable (the grader pickles it; the seed never
    sends a pickle back).
    """

    scenario_id: str
    seed: int
    pipeline_path: str
    config: dict[str, Any]
    device: str
    run_dir: str
    serve_batch_size: int
    memory_limit_mb: int
    telemetry_cadence: int = 25
    max_steps: int | None = None  # the run is stopped once it is certain to be over
    max_samples: int | None = None


def child_main(job: Job, conn: Connection) -> None:
    """Process target. The worker (and torch) is already imported in the forkserver that
    forks the children, so this import is free there; the parent never pays for it.
    """
    from .processes import seed_setup
    from .worker import run_seed

    seed_setup()
    run_seed(job, conn)
