"""One seed of a candidate, inside its own child process.

The child seeds everything, loads the candidate's ``pipeline.py`` by path, hands it the
development split, and scores the returned model on the hidden test split itself. Whatever
the candidate does (raise, diverge, exhaust memory) ends as a result dict sent to the
parent; only a hang or a hard crash is left for the parent to notice.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import resource
import sys
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torch._dynamo  # preloaded on purpose, see PROBE_SIZE's comment

from .. import data as datasets
from ..config import Config
from ..telemetry import EventWriter, Telemetry, companion_batches
from .job import Job
from .run import NonFiniteLoss, Run

# torch imports its compiler stack (~800 modules, ~1.5 s) lazily on the first optimizer
# construction. This module is preloaded by the forkserver that forks every seed, so the
# import above pays that once per verification instead of once per seed.
PROBE_SIZE = 32
CURVE_POINTS = 400


def run_seed(job: Job, conn: Connection) -> None:
    """Child entry point: always sends exactly one ``("result", dict)`` unless killed."""
    run_dir = Path(job.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _redirect_output(run_dir / "output.log")
    try:
        result = _run(job, conn)
    except BaseException as exc:  # a harness bug must still reach the parent as a result
        result = {"status": "harness-error", "error": "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__))}
    result.update(seed=job.seed, run_dir=job.run_dir)
    (run_dir / "summary.json").write_text(json.dumps(result, indent=1, default=str))
    conn.send(("result", result))
    conn.close()


def _redirect_output(path: Path) -> None:
    """The pipeline's prints go to the run folder, not over the parent's progress bars."""
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def _limit_memory(limit_mb: int) -> None:
    """Cap the address space so a runaway allocation raises instead of taking the machine.

    CPU only: CUDA reserves huge virtual ranges, so there the parent's RSS watch decides.
    """
    with open("/proc/self/statm") as statm:
        used = int(statm.read().split()[0]) * resource.getpagesize()
    cap = used + limit_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _seed_everything(seed: int, device: torch.device) -> None:
    """One thread per child: the seeds run in parallel anyway, and single-threaded CPU
    kernels give the same numbers for the same seed (the test suite checks this).

    ``torch.use_deterministic_algorithms`` is set on CUDA only: its first call imports
    ~800 modules (1.7 s), which would double the cost of a small CPU run.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.cuda.manual_seed_all(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)


def _resolve_device(requested: str) -> torch.device | None:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        return None
    return torch.device(requested)


def load_pipeline(path: Path) -> ModuleType:
    """Load a candidate's ``pipeline.py`` by path; it is never imported as a package."""
    spec = importlib.util.spec_from_file_location("sandbox_candidate_pipeline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def describe_exception(exc: BaseException, pipeline_path: Path) -> str:
    """``raised ValueError at pipeline.py:42 (in train): message``, pointing into the
    candidate's own file rather than into torch.
    """
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if Path(f.filename).resolve() == pipeline_path.resolve()]
    where = f" at {pipeline_path.name}:{frames[-1].lineno} (in {frames[-1].name})" if frames else ""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"raised {type(exc).__name__}{where}" + (f": {message}" if message else "")


def _is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError)
        and ("can't allocate memory" in text or "out of memory" in text))


def _run(job: Job, conn: Connection) -> dict[str, Any]:
    device = _resolve_device(job.device)
    if device is None:
        return {"status": "bad-device", "error": "--device cuda was asked for, but this "
                "torch sees no CUDA device (torch.cuda.is_available() is False)."}
    if device.type == "cpu":
        _limit_memory(job.memory_limit_mb)
    _seed_everything(job.seed, device)
    pipeline_path = Path(job.pipeline_path)
    dev, test = datasets.build(job.config["data"], job.seed)
    writer = EventWriter(Path(job.run_dir))
    telemetry = Telemetry(writer, cadence=job.telemetry_cadence)
    run = Run(job.seed, device, writer, telemetry,
              on_progress=lambda step, loss: conn.send(("progress", step, loss)))
    result: dict[str, Any] = {"device": str(device)}
    telemetry.install()
    started = time.perf_counter()
    try:
        module = load_pipeline(pipeline_path)
        model = module.train(Config(job.config), dev, run)
        result["train_time_s"] = time.perf_counter() - started
        result.update(score(module, model, test, job.serve_batch_size, device))
        result["status"] = "ok"
    except NonFiniteLoss as stop:
        result.update(status="diverged", error=str(stop), diverged_at=stop.step)
    except BaseException as exc:  # whatever the candidate does wrong is a verdict
        status = "out-of-memory" if _is_out_of_memory(exc) else "raised"
        result.update(status=status, error=describe_exception(exc, pipeline_path))
    finally:
        telemetry.remove()
    last_step = max([telemetry.steps] + [s for pts in run.series.values() for s, _ in pts])
    for tag in ("test/metric", "serve/batch_dependence"):
        if result.get(tag) is not None:
            writer.add(tag, result[tag], last_step)
    writer.flush()
    result.update(steps=telemetry.steps, series=_curves(run.series), **_curve_summary(run.series))
    return result


def _curve_summary(series: dict[str, list[tuple[int, float]]]) -> dict[str, Any]:
    """The numbers verification reads from the logged curves, taken before thinning."""
    losses = [v for _, v in series.get("loss/train", [])]
    tail = losses[-max(1, len(losses) // 10):]
    val = series.get("metric/val", [])
    return {"train_loss_first": losses[0] if losses else None,
            "train_loss_final": sum(tail) / len(tail) if tail else None,
            "train_loss_points": len(losses),
            "val_metric": val[-1][1] if val else None}


def _default_predict(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    return model(x)


def score(module: ModuleType, model: Any, test: datasets.Split, batch_size: int,
          device: torch.device) -> dict[str, Any]:
    """Hidden-test accuracy through the pipeline's own ``predict`` at a serving-like batch
    size, and how much predictions for the same inputs move with the rest of the batch.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError("train() must return the trained torch.nn.Module, "
                        f"not {type(model).__name__}")
    predict = getattr(module, "predict", _default_predict)
    with torch.no_grad():
        scores = torch.cat([_predict_batch(predict, model, test.x[rows], device, test.num_classes)
                            for rows in serving_batches(len(test), batch_size)])
        accuracy = float((scores.argmax(1) == test.y).float().mean())
        flips = batch_dependence(predict, model, test, batch_size, device)
    return {"test/metric": accuracy, "serve/batch_dependence": flips,
            "params": sum(p.numel() for p in model.parameters())}


def batch_dependence(predict: Any, model: torch.nn.Module, test: datasets.Split,
                     batch_size: int, device: torch.device) -> float:
    """Fraction of PROBE_SIZE test inputs whose predicted class changes when the same input
    is served, in a batch of the serving size, next to two different sets of companions.
    A model that is a fixed function of each input scores 0.
    """
    size = max(2, batch_size)
    n = len(test)
    changed = 0
    for i in range(PROBE_SIZE):
        ours, theirs = companion_batches(i, n, size)
        first = _predict_batch(predict, model, test.x[ours], device, test.num_classes)
        second = _predict_batch(predict, model, test.x[theirs], device, test.num_classes)
        changed += int(first[0].argmax() != second[0].argmax())
    return changed / PROBE_SIZE


def serving_batches(n: int, batch_size: int) -> list[torch.Tensor]:
    """Row indices in batches of ``batch_size``; a short remainder joins the batch before it,
    so no request is scored in a smaller batch than the serving size promises.
    """
    batches = list(torch.arange(n).split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def _predict_batch(predict: Any, model: torch.nn.Module, x: torch.Tensor, device: torch.device,
                   num_classes: int) -> torch.Tensor:
    out = predict(model, x.to(device))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(x), num_classes):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"predict() returned {shape} for a batch of {len(x)}; expected "
                         f"class scores of shape ({len(x)}, {num_classes})")
    return out.detach().float().cpu()


def _curves(series: dict[str, list[tuple[int, float]]]) -> dict[str, list[tuple[int, float]]]:
    """Each logged series thinned to at most CURVE_POINTS points for plots and summaries."""
    thinned = {}
    for tag, points in series.items():
        stride = max(1, len(points) // CURVE_POINTS)
        thinned[tag] = points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])
    return thinned

