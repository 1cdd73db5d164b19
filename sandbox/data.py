"""Data sets for the scenarios: one shipped real set and synthetic tasks built to make a bug show.

The harness builds a scenario's data from its config's ``data`` section (locked, so a
candidate cannot change it), splits off a hidden test split that the pipeline never sees,
and hands the rest, the development split, to ``train``. Everything is generated from the
seed, so one seed gives one data set on every machine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class Split:
    """Inputs and targets; ``groups`` says which rows belong together (e.g. one patient)."""

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    groups: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)


def datasets_dir() -> Path:
    here = Path(__file__).resolve().parent
    installed = here / "_bundled" / "datasets"
    return installed if installed.is_dir() else here.parent / "datasets"


@cache
def _load_shipped(name: str) -> dict[str, np.ndarray]:
    """A shipped file, refused if its bytes differ from the manifest's checksum."""
    folder = datasets_dir()
    expected = json.loads((folder / "MANIFEST.json").read_text())[name]["sha256"]
    blob = (folder / name).read_bytes()
    actual = hashlib.sha256(blob).hexdigest()
    if actual != expected:
        raise RuntimeError(f"datasets/{name} is corrupt: sha256 {actual}, manifest says {expected}")
    with np.load(folder / name) as archive:
        return {k: archive[k] for k in archive.files}


def _split_rows(n: int, test_fraction: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    n_test = round(n * test_fraction)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _make(x: np.ndarray, y: np.ndarray, num_classes: int,
          groups: np.ndarray | None = None) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                 torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)), num_classes,
                 None if groups is None else torch.from_numpy(groups.astype(np.int64)))


def digits(seed: int, test_fraction: float = 0.25) -> tuple[Split, Split]:
    """UCI handwritten digits as (N, 1, 8, 8) images with raw pixel values 0..16."""
    raw = _load_shipped("digits.npz")
    images, labels = raw["images"][:, None].astype(np.float32), raw["labels"]
    dev, test = _split_rows(len(labels), test_fraction, np.random.default_rng(seed))
    return _make(images[dev], labels[dev], 10), _make(images[test], labels[test], 10)


def shells(seed: int, n: int = 3000, dim: int = 10, classes: int = 3,
           test_fraction: float = 0.25) -> tuple[Split, Split]:
    """Gaussian points labelled by which radial shell they fall in: no linear model can
    beat chance, a small ReLU network gets it nearly right.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    radius = np.linalg.norm(x, axis=1)
    edges = np.quantile(radius, np.linspace(0, 1, classes + 1)[1:-1])
    y = np.digitize(radius, edges)
    dev, test = _split_rows(n, test_fraction, rng)
    return _make(x[dev], y[dev], classes), _make(x[test], y[test], classes)


def patients(seed: int, n_patients: int = 400, visits: int = 4, dim: int = 16,
             label_noise: float = 0.3, test_patients: int = 200) -> tuple[Split, Split]:
    """Repeated visits of the same patients: each visit is the patient's profile plus a
    little noise, and carries the patient's (noisy) diagnosis. The hidden test holds new
    patients only, as deployment would.
    """
    rng = np.random.default_rng(seed)
    total = n_patients + test_patients
    direction = rng.standard_normal(dim)
    direction /= np.linalg.norm(direction)
    profile = rng.standard_normal((total, dim))
    clean = (profile @ direction > 0).astype(np.int64)
    flipped = rng.random(total) < label_noise
    label = np.where(flipped, 1 - clean, clean)
    pid = np.repeat(np.arange(total), visits)
    x = profile[pid] + 0.1 * rng.standard_normal((total * visits, dim))
    y = label[pid]
    order = rng.permutation(total * visits)  # the export is not sorted by patient
    x, y, pid = x[order], y[order], pid[order]
    test = pid >= n_patients
    return _make(x[~test], y[~test], 2, pid[~test]), _make(x[test], y[test], 2, pid[test])


BUILDERS: dict[str, Callable[..., tuple[Split, Split]]] = {
    "digits": digits, "shells": shells, "patients": patients}


def build(data_cfg: dict[str, Any], seed: int) -> tuple[Split, Split]:
    """The (development, hidden test) splits a scenario's ``data`` config describes."""
    params = dict(data_cfg)
    name = params.pop("name")
    if name not in BUILDERS:
        raise ValueError(f"unknown data set '{name}'; known: {', '.join(BUILDERS)}")
    return BUILDERS[name](seed, **params)
