"""Rebuild ``digits.npz`` from scikit-learn's bundled copy of the UCI digits data.

The sandbox never downloads data at run time, so the file is committed; this script
is how it was made (scikit-learn is needed only here, not by the sandbox):

    pip install scikit-learn && python datasets/make_digits.py

It writes the 1,797 8x8 images as uint8 (pixel values 0..16) and their labels, then
prints the SHA-256 that MANIFEST.json records.
"""

import hashlib
import io
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

OUT = Path(__file__).with_name("digits.npz")


def main() -> None:
    digits = load_digits()
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        images=digits.images.astype(np.uint8),
        labels=digits.target.astype(np.int64),
    )
    OUT.write_bytes(buffer.getvalue())
    print(OUT.name, hashlib.sha256(OUT.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()
