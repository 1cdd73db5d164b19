"""One seed of a candidate, inside its own child process.

The child seeds everything, builds the development split (never the hidden one), loads
the candidate's ``pipeline.py`` by path and calls ``train``, with the harness's
instruments installed: row tracing (what was trained on, what was validated on, the
budget in samples), gradient-rescaling and tamper checks, and the usual telemetry.
When ``train`` returns a model, the child says so; only then does the grader write the
hidden inputs, without labels, and the child serves them through the pipeline's own
``predict``. The child sends back what it measured and the raw predictions, as JSON: the
grader scores them.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import os
import random
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torch._dynamo  # preloaded on purpose, see the comment below

from .. import data as datasets
from ..config import Config
from ..telemetry import EventWriter, Telemetry, companion_batches
from . import protocol
from .instruments import (
    ClipMonitor,
    GradientRecord,
    ModeRecord,
    Seal,
    ServingMonitor,
    gradient_hooks,
    missing_hooks,
)
from .job import PROBE_SIZE, Job
from .run import NonFiniteLoss, OverBudget, Run
from .tracing import Tracer, plain, tag

# torch imports its compiler stack (~800 modules, ~1.5 s) lazily on the first optimizer
# construction. This module is preloaded by the forkserver that forks every seed, so the
# import above pays that once per verification instead of once per seed.
CURVE_POINTS = 400
OUTPUT_LIMIT_MB = 64  # per file the run writes; prints go to output.log
MESSAGE_CHARS = 500  # of an exception's message, in the verdict


@dataclass(frozen=True)
class Development:
    """What ``train(cfg, data, run)`` gets as ``data``: the development split as tensors.

    ``x`` is traced (see :mod:`sandbox.harness.tracing`); it behaves as any tensor.
    """

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int  # 0 for a regression task (float targets)
    groups: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def outputs(self) -> int:
        """The width of a row of what ``predict`` returns: class scores, or one value."""
        return self.num_classes or 1

    @classmethod
    def of(cls, split: datasets.Split) -> Development:
        x = torch.from_numpy(split.x)
        return cls(tag(x, torch.arange(len(x))), torch.from_numpy(split.y), split.num_classes,
                   None if split.groups is None else torch.from_numpy(split.groups))


class Channel:
    """JSON messages over the pipe to the grader, both ways. What it calls is bound when
    it is made, before the candidate's code runs, so rebinding ``protocol.encode`` or
    ``Channel.send`` later changes nothing it sends.
    """

    def __init__(self, conn: Connection):
        self._send_bytes, self._recv_bytes = conn.send_bytes, conn.recv_bytes
        self._encode, self._decode = protocol.encode, json.loads

    def send(self, message: dict[str, Any]) -> None:
        self._send_bytes(self._encode(message))

    def receive(self) -> dict[str, Any]:
        return self._decode(self._recv_bytes().decode())


def run_seed(job: Job, conn: Connection) -> None:
    """Child entry point: always sends exactly one ``result`` message unless killed."""
    run_dir = Path(job.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _redirect_output(run_dir / "output.log")
    _limit_file_size(OUTPUT_LIMIT_MB)
    channel = Channel(conn)
    send, run, blank = channel.send, _run, blank_result  # bound before the candidate runs
    try:
        result = run(job, channel)
    except BaseException as exc:  # a harness bug must still reach the grader as a result
        result = blank(status="harness-error", error="".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__)))
    send({"kind": "result", **result})
    conn.close()


def blank_result(**values: Any) -> dict[str, Any]:
    """Every field of a result message, unmeasured."""
    result: dict[str, Any] = {
        "status": "harness-error", "error": None, "diverged_at": None, "device": None,
        "torch": torch.__version__, "train_time_s": None, "steps": 0, "series": {},
        "train_loss_first": None, "train_loss_final": None, "train_loss_points": 0,
        "val_metric": None, "loss_digest": "", "rows": None, "model": None,
        "samples": {"traced": 0, "untraced": 0, "backward_passes": 0,
                    "untraced_evaluated": 0, "foreign_output_hooks": 0},
        "clipping": {"steps": 0, "measured": 0, "rescaled": 0, "outside": 0}, "tampered": [],
        "modes": None, "start_digest": None, "gradient_hooks": [], "serving": None,
        "predictions": None}
    result.update(values)
    return result


def _redirect_output(path: Path) -> None:
    """The pipeline's prints go to the run folder, not over the parent's progress bars."""
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)


def _limit_file_size(limit_mb: int) -> None:
    """No file the run writes, ``output.log`` included, grows past ``limit_mb``: a write
    past it fails with EFBIG (an OSError the verdict names) instead of filling the disk.
    SIGXFSZ, which would kill the process without a word, is ignored.
    """
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    cap = limit_mb * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))


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

    Denormal floats are flushed to zero: a saturated model (an LSTM whose gates are
    pinned after a gradient burst) otherwise computes with them, and x86 CPUs run such
    arithmetic up to 5x slower, which turns a 1.5 s broken run into 9 s.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
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
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return (f"raised OSError{where}: a file it wrote (output.log holds its prints) "
                f"reached the sandbox's limit of {OUTPUT_LIMIT_MB} MiB per file")
    message = protocol.clip(str(exc).strip().partition("\n")[0], MESSAGE_CHARS)
    return f"raised {type(exc).__name__}{where}" + (f": {message}" if message else "")


def _is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError)
        and ("can't allocate memory" in text or "out of memory" in text))


class Instruments:
    """Everything the harness hooks into torch while ``train`` runs, removed exactly once."""

    def __init__(self, n_rows: int, writer: EventWriter, cadence: int):
        self.telemetry = Telemetry(writer, cadence=cadence)
        self.tracer = Tracer(n_rows)
        self.clips = ClipMonitor()
        self.gradients = GradientRecord()
        self.tracer.graph = self.gradients
        self.tracer.after_backward.append(self.clips.after_backward)
        self.modes = ModeRecord(self.tracer)
        self.tracer.after_backward.append(self.modes.after_backward)
        self.seal = Seal()  # made before the candidate's code runs
        self.tampered: list[str] = []
        self._installed = False

    def limit(self, max_steps: int | None, max_samples: int | None) -> None:
        """Stop the run at the first step past the scenario's budget (see OverBudget)."""
        tracer = self.tracer

        def check(step: int) -> None:
            samples = tracer.traced_samples + tracer.untraced_samples
            if max_steps is not None and step > max_steps:
                raise OverBudget("optimizer steps", step, max_steps, step)
            if max_samples is not None and samples > max_samples:
                raise OverBudget("samples trained on", samples, max_samples, step)

        self.telemetry.gradients.before_step = check

    def install(self) -> None:
        self.telemetry.install()
        self.tracer.install()
        self.clips.install()
        self._handles = self.telemetry.handles() + self.tracer.handles() + self.clips.handles()
        self._installed = True

    def remove(self) -> None:
        """Check first that the candidate did not remove the hooks, then remove them."""
        if not self._installed:
            return
        self._installed = False
        self.tampered = missing_hooks(self._handles) + self.seal.broken()
        self.telemetry.remove()
        self.tracer.remove()
        self.clips.remove()
        self.tracer.finish()


def _run(job: Job, channel: Channel) -> dict[str, Any]:
    device = _resolve_device(job.device)
    if device is None:
        return blank_result(status="bad-device", error="--device cuda was asked for, but this "
                            "torch sees no CUDA device (torch.cuda.is_available() is False).")
    if device.type == "cpu":
        _limit_memory(job.memory_limit_mb)
    _seed_everything(job.seed, device)
    pipeline_path = Path(job.pipeline_path)
    data = Development.of(datasets.development(job.config["data"], job.seed))
    writer = EventWriter(Path(job.run_dir))
    instruments = Instruments(len(data), writer, job.telemetry_cadence)
    instruments.limit(job.max_steps, job.max_samples)
    run = Run(job.seed, device, writer, instruments.telemetry,
              on_progress=lambda step, loss: channel.send(
                  {"kind": "progress", "step": step, "loss": loss}))
    result = blank_result(device=str(device))
    model: Any = None
    # Everything used after the candidate's code has run is bound now, before it runs.
    remove, serve_model, measure, broken = (instruments.remove, serve, measured,
                                            instruments.seal.broken)
    send, receive, load = channel.send, channel.receive, np.load
    instruments.install()
    started = time.perf_counter()
    try:
        module = load_pipeline(pipeline_path)
        model = module.train(Config(job.config), data, run)
        result["train_time_s"] = time.perf_counter() - started
        if not isinstance(model, torch.nn.Module):
            raise TypeError("train() must return the trained torch.nn.Module, "
                            f"not {type(model).__name__}")
        remove()
        send({"kind": "trained"})
        inputs = load(receive()["inputs"], allow_pickle=False)
        result.update(serve_model(module, model, inputs, data, instruments.tracer.validated,
                                  job.serve_batch_size, device))
        result["status"] = "ok"
    except NonFiniteLoss as stop:
        result.update(status="diverged", error=str(stop), diverged_at=stop.step)
    except OverBudget as stop:
        result.update(status="over-budget", error=str(stop))
    except BaseException as exc:  # whatever the candidate does wrong is a verdict
        status = "out-of-memory" if _is_out_of_memory(exc) else "raised"
        result.update(status=status, error=describe_exception(exc, pipeline_path))
    finally:
        remove()
    writer.flush()
    result.update(measure(instruments, run, model))
    result["tampered"] = list(dict.fromkeys(result["tampered"] + broken()))  # serving too
    return result


def measured(instruments: Instruments, run: Run, model: Any) -> dict[str, Any]:
    """What the instruments saw during ``train``, as result fields."""
    tracer = instruments.tracer
    models = [model] if isinstance(model, torch.nn.Module) else []
    seen = sorted(tracer.roots.values(), key=lambda m: -sum(p.numel() for p in m.parameters()))
    losses = [v for _, v in run.series.get("loss/train", [])]
    return {
        "steps": instruments.telemetry.steps,
        "series": _curves(run.series),
        **_curve_summary(run.series),
        "loss_digest": hashlib.sha256(np.asarray(losses, dtype=np.float64).tobytes())
        .hexdigest()[:16],
        "samples": {"traced": tracer.traced_samples, "untraced": tracer.untraced_samples,
                    "backward_passes": tracer.backward_passes,
                    "untraced_evaluated": tracer.untraced_evaluated,
                    "foreign_output_hooks": tracer.foreign_output_hooks},
        "rows": {"n": tracer.n_rows,
                 "trained": protocol.pack(np.packbits(tracer.trained.numpy())),
                 "evaluated": protocol.pack(np.packbits(tracer.evaluated.numpy()))},
        "model": _model_record(instruments, models[0], "returned") if models else
        _model_record(instruments, seen[0], "seen in training") if seen else None,
        "clipping": instruments.clips.summary(),
        "modes": instruments.modes.summary(),
        "start_digest": tracer.start_digest,
        "tampered": instruments.tampered,
        "gradient_hooks": gradient_hooks(models + seen[:1]),
    }


def _model_record(instruments: Instruments, model: torch.nn.Module,
                  source: str) -> dict[str, Any]:
    return {**signature(model, source), **instruments.gradients.summary(model)}


def signature(model: torch.nn.Module, source: str) -> dict[str, Any]:
    """The model's size as the capacity lock compares it: parameter count and shapes (the
    tensors that were trained, in it or not, come from the gradient record).
    """
    params = list(model.parameters())
    with torch.no_grad():
        finite = all(bool(torch.isfinite(p).all()) for p in params)
    return {"params": sum(p.numel() for p in params),
            "shapes": [list(p.shape) for p in params], "source": source, "finite": finite}


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


def serve(module: ModuleType, model: torch.nn.Module, inputs: np.ndarray, data: Development,
          validated: torch.Tensor, batch_size: int, device: torch.device) -> dict[str, Any]:
    """Serve the hidden inputs through the pipeline's ``predict`` at the serving batch size,
    twice more for the batch-dependence probe (the second serving of the first batch
    again: answers that change on the very same batch are randomness, not batch
    dependence), then the rows the pipeline validated on.
    Only raw scores leave this process; the grader holds the labels.
    """
    predict = getattr(module, "predict", _default_predict)
    x = torch.from_numpy(inputs)
    classes = data.outputs
    size = max(2, batch_size)
    for layer in model.modules():  # as a serving process finds a model it has just loaded:
        layer.__dict__["training"] = True  # predict() sets the mode it needs (set directly:
        # a train() the pipeline overrode could refuse)
    with ServingMonitor(model) as monitor, torch.no_grad():
        scores = _predict_rows(predict, model, x, batch_size, device, classes)
        pairs = [companion_batches(i, len(x), size) for i in range(min(PROBE_SIZE, len(x)))]
        probe_a = torch.stack([_predict_batch(predict, model, x[a], device, classes)[0]
                               for a, _ in pairs])
        probe_b = torch.stack([_predict_batch(predict, model, x[b], device, classes)[0]
                               for _, b in pairs])
        probe_r = torch.stack([_predict_batch(predict, model, x[a], device, classes)[0]
                               for a, _ in pairs])
    serving = monitor.summary()
    rows = validated.nonzero().flatten()
    val = None
    if len(rows):
        with torch.no_grad():
            val = _predict_rows(predict, model, plain(data.x)[rows], batch_size, device, classes)
    serving["uses_model"] = _uses_model(predict, model, x[pairs[0][0]] if pairs else x[:2],
                                        device, classes)
    pack: Callable[[torch.Tensor], dict[str, Any]] = lambda t: protocol.pack(t.numpy())  # noqa: E731
    return {"serving": serving, "predictions": {
        "test": pack(scores), "probe_a": pack(probe_a), "probe_b": pack(probe_b),
        "probe_r": pack(probe_r),
        "val": None if val is None else pack(val)}}


@torch.no_grad()
def _uses_model(predict: Any, model: torch.nn.Module, batch: torch.Tensor,
                device: torch.device, classes: int) -> bool:
    """Do the served answers depend on the model's weights? A predict() that answers from
    a lookup table, a cache or a rule of its own gives the same answers with every weight
    perturbed. The weights are restored exactly afterwards.
    """
    params = [p for p in model.parameters() if p.numel()]
    if not params:
        return False
    before = _predict_batch(predict, model, batch, device, classes)
    saved = [p.detach().clone() for p in params]
    noise = torch.Generator().manual_seed(0)
    try:
        for p in params:
            scale = float(p.detach().abs().mean()) + 1e-3
            p.add_(torch.randn(p.shape, generator=noise).to(p.device, p.dtype) * scale)
        after = _predict_batch(predict, model, batch, device, classes)
    finally:
        for p, original in zip(params, saved, strict=True):
            p.copy_(original)
    return not torch.equal(before, after)


def serving_batches(n: int, batch_size: int) -> list[torch.Tensor]:
    """Row indices in batches of ``batch_size``; a short remainder joins the batch before it,
    so no request is scored in a smaller batch than the serving size promises.
    """
    batches = list(torch.arange(n).split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def _predict_rows(predict: Any, model: torch.nn.Module, x: torch.Tensor, batch_size: int,
                  device: torch.device, classes: int) -> torch.Tensor:
    return torch.cat([_predict_batch(predict, model, x[rows], device, classes)
                      for rows in serving_batches(len(x), batch_size)])


def _predict_batch(predict: Any, model: torch.nn.Module, x: torch.Tensor, device: torch.device,
                   outputs: int) -> torch.Tensor:
    """One served batch as (rows, outputs). ``outputs`` 1 is a regression: predictions
    shaped (rows,) are accepted too.
    """
    out = predict(model, x.to(device))
    if isinstance(out, torch.Tensor) and outputs == 1 and tuple(out.shape) == (len(x),):
        out = out[:, None]
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(x), outputs):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        wanted = f"class scores of shape ({len(x)}, {outputs})" if outputs > 1 else \
            f"predictions of shape ({len(x)},) or ({len(x)}, 1)"
        raise ValueError(f"predict() returned {shape} for a batch of {len(x)}; expected "
                         f"{wanted}")
    return plain(out).detach().float().cpu()


def _curves(series: dict[str, list[tuple[int, float]]]) -> dict[str, list[tuple[int, float]]]:
    """Each logged series thinned to at most CURVE_POINTS points for plots and summaries."""
    thinned = {}
    for tag_name, points in series.items():
        stride = max(1, len(points) // CURVE_POINTS)
        thinned[tag_name] = points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])
    return thinned
