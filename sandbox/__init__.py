"""A PyTorch model-debugging challenge sandbox.

The public API, shared by the CLI and notebooks. Importing it does not import torch:
runs happen in child processes. Scripts that call :func:`verify` or :func:`run` need the
usual ``if __name__ == "__main__":`` guard, as with any multiprocessing code.

    import sandbox
    sandbox.list_scenarios()                       # the catalog
    scenario = sandbox.load_scenario("exploding-lr-v2")
    result = sandbox.verify("exploding-lr-v2", overrides=["optimizer.lr=0.02"])
    result.passed, result.to_json()
    for run in sandbox.diagnose("runs/"):          # any TensorBoard log folder
        print(run.name, [(f.symptom, f.step) for f in run.findings])
    probe = sandbox.Probe("runs/mine")             # telemetry for your own loop
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .catalog import Scenario, discover
from .catalog import get as load_scenario
from .errors import SandboxError

if TYPE_CHECKING:
    from .diagnosis import RunDiagnosis
    from .probe import Probe
    from .verification import EventFn, Verification

__all__ = ["Probe", "SandboxError", "Scenario", "diagnose", "list_scenarios", "load_scenario",
           "run", "verify"]


def __getattr__(name: str) -> object:
    """``sandbox.Probe`` imports torch, so only when asked for."""
    if name == "Probe":
        from .probe import Probe
        return Probe
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")


def diagnose(path: str | Path) -> list[RunDiagnosis]:
    """The findings for every run under a TensorBoard log folder (see sandbox.diagnosis)."""
    from .diagnosis import diagnose as _diagnose
    return _diagnose(path)
__version__ = "0.1.0"


def list_scenarios(extra_dirs: Sequence[Path] = ()) -> list[Scenario]:
    return list(discover(extra_dirs).values())


def verify(scenario_id: str, *, solution: bool = False, config: Path | None = None,
           pipeline: Path | None = None, overrides: Sequence[str] = (),
           seeds: Sequence[int] | None = None, device: str = "auto",
           logdir: Path = Path("runs"), extra_dirs: Sequence[Path] = (),
           on_event: EventFn | None = None) -> Verification:
    """Verify a candidate on the scenario's seeds (or ``seeds``); see ``Verification``."""
    from .harness import candidate
    from .verification import verify as _verify

    scenario = load_scenario(scenario_id, extra_dirs)
    chosen = candidate.make(scenario, solution=solution, config_file=config,
                            pipeline_file=pipeline, overrides=overrides)
    return _verify(scenario, chosen, seeds=seeds, device=device, logdir=Path(logdir),
                   on_event=on_event)


def run(scenario_id: str, *, seed: int | None = None, solution: bool = False,
        config: Path | None = None, pipeline: Path | None = None,
        overrides: Sequence[str] = (), device: str = "auto", logdir: Path = Path("runs"),
        extra_dirs: Sequence[Path] = ()) -> Verification:
    """One seed of a candidate, with telemetry: the scenario's first seed by default."""
    first = load_scenario(scenario_id, extra_dirs).seeds[0]
    return verify(scenario_id, solution=solution, config=config, pipeline=pipeline,
                  overrides=overrides, seeds=[first if seed is None else seed], device=device,
                  logdir=logdir, extra_dirs=extra_dirs)
