"""Calibration windows: clean *training* windows only (never val or test), seeded and fingerprinted."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from ..data.base import CSIDataset, SplitSpec
from ..errors import EdgeposeError


@dataclass
class CalibrationSet:
    """``count`` clean training windows drawn with ``seed``; ``windows`` is ``float32 [n, C, T]``."""

    windows: np.ndarray
    indices: np.ndarray
    fingerprint: str
    seed: int

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
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(pool, size=min(count, len(pool)), replace=False))
        x, _ = ds.read(idx)
        h = hashlib.sha256(ds.fingerprint.encode())
        h.update(idx.astype(np.int64).tobytes())
        return cls(x, idx, h.hexdigest(), seed)

    def describe(self) -> dict:
        return {"windows": int(len(self.indices)), "seed": self.seed, "source": "clean training windows",
                "fingerprint": self.fingerprint}


class OrtCalibrationReader(CalibrationDataReader):
    """Feeds a :class:`CalibrationSet` to ONNX Runtime's calibrators in batches."""

    def __init__(self, calib: CalibrationSet, input_name: str, batch: int = 64) -> None:
        self._batches = [calib.windows[i : i + batch] for i in range(0, len(calib.windows), batch)]
        self._name = input_name
        self._it = iter(self._batches)

    def get_next(self):
        nxt = next(self._it, None)
        return None if nxt is None else {self._name: nxt}

    def rewind(self) -> None:
        self._it = iter(self._batches)
