"""The reference file-level split: seeded shuffle of file indices, then 70/15/15."""

from __future__ import annotations

import math
import random
from typing import Sequence

import numpy as np

from edgepose.io import sha256_json


def evenly_spaced(items: np.ndarray, limit: int | None) -> np.ndarray:
    """At most ``limit`` entries of ``items`` evenly spaced from first to last, in order (all when
    ``limit`` is None or not below ``len(items)``)."""
    if limit is None or len(items) <= limit:
        return items
    return items[np.linspace(0, len(items) - 1, num=limit).astype(np.int64)]


def split_files(
    n_files: int, seed: int = 42, fractions: Sequence[float] = (0.7, 0.15, 0.15)
) -> tuple[list[int], list[int], list[int]]:
    """Split file indices ``0..n_files-1`` into (train, val, test) exactly as the reference does.

    ``random.seed(seed)``; shuffle ``list(range(n_files))``; the first ``floor(f_train·n)`` are
    train, the next ``floor(f_val·n)`` val, the rest test. Windows follow their files. Only the
    first two fractions are used; the test set takes whatever remains.
    """
    if n_files < 0:
        raise ValueError("n_files must be non-negative")
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) > 1 + 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to ≤ 1, got {fractions}")
    idx = list(range(n_files))
    random.seed(seed)
    random.shuffle(idx)
    n_train = math.floor(fractions[0] * n_files)
    n_val = math.floor(fractions[1] * n_files)
    return idx[:n_train], idx[n_train : n_train + n_val], idx[n_train + n_val :]


def split_fingerprint(train: Sequence[int], val: Sequence[int], test: Sequence[int], seed: int, fractions) -> str:
    """SHA-256 of the split's parameters and file lists."""
    return sha256_json({"seed": seed, "fractions": list(fractions), "train": list(train), "val": list(val), "test": list(test)})
