"""Calibration windows: clean *training* windows only (never val or test), seeded and fingerprinted."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from edgepose.data.base import CSIDataset, SplitSpec
from edgepose.errors import EdgeposeError


@dataclass
class CalibrationSet:
    """``count`` clean training windows drawn with ``seed``; ``windows`` is ``float32 [n, C, T]``."""

    windows: np.ndarray
    indices: np.ndarray
    fingerprint: str
    seed: int
    requested: int = 0
    available: int = 0

    @classmethod
    def from_dataset(cls, ds: CSIDataset, count: int = 512, seed: int = 0, spec: SplitSpec = SplitSpec(),
                     window_shape: tuple[int, int] | None = None) -> "CalibrationSet":
        if window_shape is not None and tuple(ds.window_shape) != tuple(window_shape):
            raise EdgeposeError(f"calibration windows are {ds.window_shape[0]}×{ds.window_shape[1]} but the model "
                                f"expects {window_shape[0]}×{window_shape[1]}", ds.path)
        pool = ds.indices("train", clean=True, spec=spec)
        if not len(pool):
            n_all = len(ds.indices("train", clean=False, spec=spec))
            raise EdgeposeError(f"no clean training windows to calibrate on ({n_all} training windows, all corrupt)",
                                ds.path)
        if count < 1:
            raise EdgeposeError(f"--calib-count must be at least 1, got {count}", ds.path)
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(pool, size=min(count, len(pool)), replace=False))
        x, _ = ds.read(idx)
        h = hashlib.sha256(ds.fingerprint.encode())
        h.update(idx.astype(np.int64).tobytes())
        return cls(x, idx, h.hexdigest(), seed, requested=int(count), available=int(len(pool)))

    @property
    def short(self) -> bool:
        """Fewer windows than requested: the data had fewer clean training windows."""
        return len(self.indices) < self.requested

    def describe(self) -> dict:
        out = {"windows": int(len(self.indices)), "requested": self.requested,
               "available_clean_training_windows": self.available, "seed": self.seed,
               "source": "clean training windows", "fingerprint": self.fingerprint}
        if self.short:
            out["note"] = (f"asked for {self.requested} calibration windows, the data has {self.available} clean "
                           f"training windows: calibrated on all {len(self.indices)}")
        return out
