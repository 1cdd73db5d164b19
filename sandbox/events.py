"""TensorBoard event files without torch: what both the candidate's process and the
grading process write.

``SummaryWriter.add_scalar`` spends ~150 us a call, most of it in tensorboard's
pure-Python CRC32C. So scalars are buffered in memory (under a microsecond each) and
written in batches as standard TFRecord event records, framed with the C implementation
of CRC32C; tensorboard's own reader reads them back.

The training and validation losses get a log-scale companion, ``loss/train_log10`` and
``loss/val_log10``, written here, whoever logs the loss (the harness's ``run.log``, the
probe): a run whose loss diverges to 1e30 stays on the same chart as the fix at 0.1,
where TensorBoard's default scaling would squash one of them into a line at zero.
"""

from __future__ import annotations

import math
import os
import socket
import struct
import time
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary

from .files import open_new

try:
    from google_crc32c import value as _crc32c
except ImportError:  # pragma: no cover - the dependency ships wheels; this is a safety net
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c as _crc32c


def masked_crc(data: bytes) -> int:
    """TFRecord's checksum: CRC32C, rotated and offset ("masked")."""
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _record(payload: bytes) -> bytes:
    header = struct.pack("<Q", len(payload))
    return (header + struct.pack("<I", masked_crc(header)) + payload
            + struct.pack("<I", masked_crc(payload)))


# tag -> its log10 companion. Only a positive, finite loss has one: NaN, infinities, zero
# and negative values are left out of the companion (the tag itself keeps them).
LOG_SCALED = {"loss/train": "loss/train_log10", "loss/val": "loss/val_log10"}


def log10(value: float) -> float | None:
    """The companion's value, or None where the loss has no logarithm."""
    return math.log10(value) if 0.0 < value < math.inf else None


class EventWriter:
    """Buffers scalars and appends them to one ``events.out.tfevents.*`` file on flush.

    The file is created exclusively and kept open: a link planted under its name is never
    followed.

    ``suffix`` tells apart two writers in one run folder (the candidate's process and the
    grader); tensorboard and the diagnoser merge every event file of a folder.
    ``log_scaled`` maps a tag to its log10 companion (see :data:`LOG_SCALED`).
    """

    def __init__(self, logdir: Path, suffix: str = "sandbox", dir_fd: int | None = None,
                 log_scaled: dict[str, str] | None = None):
        self._log_scaled = LOG_SCALED if log_scaled is None else log_scaled
        if dir_fd is None:
            logdir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self._pending: list[tuple[str, float, int, float]] = []
        for attempt in range(100):  # a name already taken (or planted) is never reused
            name = (f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{suffix}"
                    + (f".{attempt}" if attempt else ""))
            self.path = logdir / name
            try:
                self._fd = open_new(name if dir_fd is not None else self.path, dir_fd)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"no free event-file name in {logdir}")
        first = Event(wall_time=now, step=0, file_version="brain.Event:2")
        os.write(self._fd, _record(first.SerializeToString()))

    def add(self, tag: str, value: float, step: int) -> None:
        now = time.time()
        self._pending.append((tag, value, step, now))
        companion = self._log_scaled.get(tag)
        if companion is not None:
            scaled = log10(value)
            if scaled is not None:
                self._pending.append((companion, scaled, step, now))

    def flush(self) -> None:
        """One event record per step, holding every scalar of that step: a record costs
        about as much as the values in it, so this halves the work for gradient steps.
        """
        if not self._pending:
            return
        by_step: dict[int, tuple[float, list[Summary.Value]]] = {}
        for tag, value, step, wall in self._pending:
            by_step.setdefault(step, (wall, []))[1].append(
                Summary.Value(tag=tag, simple_value=value))
        self._pending.clear()
        records = [_record(Event(wall_time=wall, step=step, summary=Summary(value=values))
                           .SerializeToString()) for step, (wall, values) in by_step.items()]
        os.write(self._fd, b"".join(records))

    def close(self) -> None:
        self.flush()
        os.close(self._fd)
