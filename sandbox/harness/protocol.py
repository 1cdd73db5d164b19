"""What a seed's process may say to the grader, and how it is checked: JSON, never pickle.

The candidate's code runs in the seed's process and can write anything to its end of the
pipe, so every message is parsed as JSON and checked against a schema here, in the
grading process. A message that does not fit is the candidate's failure, never code that
runs in the grader. Arrays (predictions, row masks) travel as base64 of their raw bytes
with a declared dtype and shape, and are decoded with NumPy only.

Messages from the seed: ``progress`` (step, loss), ``trained`` (``train()`` returned a
model; send the serving inputs), ``result`` (everything measured). The grader answers
``trained`` with ``serve`` (where the hidden inputs were written).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import numpy as np

MAX_MESSAGE_BYTES = 256 * 2**20
MAX_TEXT = 4000  # an error message longer than this is cut, not stored whole
DTYPES = {"float32": np.float32, "uint8": np.uint8}


class MalformedMessage(ValueError):
    """A message from a seed's process that the grader refuses to read."""


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, allow_nan=True, separators=(",", ":")).encode()


def pack(array: np.ndarray) -> dict[str, Any]:
    array = np.ascontiguousarray(array)
    return {"dtype": str(array.dtype), "shape": list(array.shape),
            "b64": base64.b64encode(array.tobytes()).decode("ascii")}


def unpack(value: Any, dtype: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """An array of exactly ``dtype`` and ``shape`` (None: any length), or MalformedMessage."""
    if not (isinstance(value, dict) and value.get("dtype") == dtype
            and isinstance(value.get("shape"), list) and isinstance(value.get("b64"), str)):
        raise MalformedMessage(f"an array must be {{dtype: {dtype}, shape, b64}}")
    got = value["shape"]
    if len(got) != len(shape) or not all(isinstance(g, int) and g >= 0 and (s is None or g == s)
                                         for g, s in zip(got, shape, strict=False)):
        raise MalformedMessage(f"an array has shape {got}, expected {list(shape)}")
    try:
        raw = base64.b64decode(value["b64"], validate=True)
    except ValueError:
        raise MalformedMessage("an array's bytes are not valid base64") from None
    expected = int(np.prod(got)) * np.dtype(DTYPES[dtype]).itemsize
    if len(raw) != expected:
        raise MalformedMessage(f"an array holds {len(raw)} bytes, expected {expected}")
    return np.frombuffer(raw, dtype=DTYPES[dtype]).reshape(got)


# -- the schema ------------------------------------------------------------------------
# A checker takes the value and returns it (possibly cleaned) or raises MalformedMessage.
Check = Callable[[Any], Any]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedMessage(f"expected a number, got {type(value).__name__}")
    return float(value)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedMessage(f"expected a count, got {value!r:.40}")
    return value


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, saying so: a verdict quotes what a candidate
    said, never megabytes of it.
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]} [cut: {len(text) - limit} more characters]"


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise MalformedMessage(f"expected text, got {type(value).__name__}")
    return clip(value)


def _optional(check: Check) -> Check:
    return lambda value: None if value is None else check(value)


def _list_of(check: Check, limit: int = 10_000) -> Check:
    def checked(value: Any) -> list[Any]:
        if not isinstance(value, list) or len(value) > limit:
            raise MalformedMessage("expected a list")
        return [check(item) for item in value]
    return checked


def _record(fields: dict[str, Check]) -> Check:
    """A mapping with exactly these keys (each present, each checked)."""
    def checked(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or set(value) != set(fields):
            keys = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise MalformedMessage(f"expected the fields {sorted(fields)}, got {keys}")
        return {key: check(value[key]) for key, check in fields.items()}
    return checked


MAX_STEP = 2**62  # event files store steps as int64


def _step(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_STEP:
        raise MalformedMessage(f"a step must be a whole number from 0 to 2^62, got {value!r:.40}")
    return value


def _point(value: Any) -> tuple[int, float]:
    if not (isinstance(value, list) and len(value) == 2):
        raise MalformedMessage("a curve point must be [step, value]")
    return _step(value[0]), _number(value[1])


def _series(value: Any) -> dict[str, list[tuple[int, float]]]:
    if not isinstance(value, dict) or len(value) > 10_000:
        raise MalformedMessage("series must map tags to points")
    return {_text(tag): _list_of(_point, 100_000)(points) for tag, points in value.items()}


def _any_array(value: Any) -> Any:
    """Shape and dtype are checked by the grader against what it sent (see ``unpack``)."""
    if not isinstance(value, dict):
        raise MalformedMessage("expected an array")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise MalformedMessage(f"expected true or false, got {value!r:.40}")
    return value


_SHAPES = _list_of(_list_of(_count, 8))
_MODEL = _record({"params": _count, "shapes": _SHAPES, "source": _text, "finite": _flag,
                  "trained": _count, "foreign": _count, "foreign_shapes": _SHAPES})
_SAMPLES = _record({"traced": _count, "untraced": _count, "backward_passes": _count,
                    "untraced_evaluated": _count, "foreign_output_hooks": _count})
_CLIPPING = _record({"steps": _count, "measured": _count, "rescaled": _count,
                     "outside": _count})
_MODES = _record({"passes": _count, "in_eval": _count, "layers": _list_of(_text, 10)})
_SERVING = _record({"train_mode": _list_of(_text, 1000),
                    "buffers_changed": _list_of(_text, 1000), "uses_model": _flag})
_PREDICTIONS = _record({"test": _any_array, "probe_a": _any_array, "probe_b": _any_array,
                        "probe_r": _any_array, "val": _optional(_any_array)})

RESULT: dict[str, Check] = {
    "status": _text,
    "error": _optional(_text),
    "diverged_at": _optional(_step),
    "device": _optional(_text),
    "torch": _optional(_text),
    "train_time_s": _optional(_number),
    "steps": _step,
    "series": _series,
    "train_loss_first": _optional(_number),
    "train_loss_final": _optional(_number),
    "train_loss_points": _count,
    "val_metric": _optional(_number),
    "loss_digest": _text,
    "samples": _SAMPLES,
    "rows": _optional(_record({"n": _count, "trained": _any_array, "evaluated": _any_array})),
    "model": _optional(_MODEL),
    "clipping": _CLIPPING,
    "modes": _optional(_MODES),
    "start_digest": _optional(_text),
    "tampered": _list_of(_text, 100),
    "gradient_hooks": _list_of(_text, 1000),
    "serving": _optional(_SERVING),
    "predictions": _optional(_PREDICTIONS),
}
MESSAGES: dict[str, Check] = {
    "progress": _record({"kind": _text, "step": _step,
                         "loss": _optional(_number)}),
    "trained": _record({"kind": _text}),
    "result": _record({"kind": _text, **RESULT}),
}


def decode(raw: bytes) -> dict[str, Any]:
    """A checked message from a seed's process; anything else raises MalformedMessage."""
    try:
        message = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedMessage(f"not a JSON message ({exc.__class__.__name__})") from None
    if not isinstance(message, dict) or message.get("kind") not in MESSAGES:
        kind = message.get("kind") if isinstance(message, dict) else type(message).__name__
        raise MalformedMessage(f"unknown message kind {kind!r:.40}")
    return MESSAGES[message["kind"]](message)

