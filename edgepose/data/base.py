"""The one dataset interface every CSI source implements.

A :class:`CSIDataset` exposes windows ``float32 [C, T]`` (memory-mapped or lazily read — never
loaded whole), their keypoints ``float32 [J, 2]`` and the index of the file each window came
from. Corrupt windows (any non-finite value, or ``max |x| > 1.5``) are found once by
:meth:`CSIDataset.corrupt_mask` and excluded from training, calibration and the clean score.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from edgepose.skeleton import JointLayout
from edgepose.data.split import split_files, split_fingerprint

CORRUPT_ABS_LIMIT = 1.5
SPLITS = ("train", "val", "test")


class WindowSource(Protocol):
    """Array-like of windows: ``shape``, ``dtype`` and integer/array indexing along axis 0."""

    shape: tuple[int, ...]

    def __getitem__(self, idx): ...


@dataclass(frozen=True)
class SplitSpec:
    """Seed and fractions of the file-level split."""

    seed: int = 42
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)

    @classmethod
    def from_card(cls, card: dict | None) -> "SplitSpec":
        """The split a checkpoint card records (its ``split`` section), the reference split when absent."""
        s = (card or {}).get("split") or {}
        return cls(int(s.get("seed", cls.seed)), tuple(s.get("fractions", cls.fractions)))


class CSIDataset:
    """Windows, keypoints and file membership of one dataset on disk.

    Subclasses fill ``windows`` (array-like ``[N, C, T]``), ``keypoints`` (``[N, J, 2]``),
    ``window_file`` (``[N]`` file index), ``file_ids`` and ``layout``.
    """

    format_name: str = "abstract"

    def __init__(
        self,
        path: Path,
        windows: WindowSource,
        keypoints: np.ndarray,
        window_file: np.ndarray,
        file_ids: Sequence[str],
        layout: JointLayout,
    ) -> None:
        self.path = Path(path)
        self.windows = windows
        self.keypoints = keypoints
        self.window_file = np.asarray(window_file, dtype=np.int64)
        self.file_ids = list(file_ids)
        self.layout = layout

    # -- shape facts -----------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.windows.shape[0])

    @property
    def n_files(self) -> int:
        return len(self.file_ids)

    @property
    def window_shape(self) -> tuple[int, int]:
        return int(self.windows.shape[1]), int(self.windows.shape[2])

    # -- corruption ------------------------------------------------------------------------
    def corrupt_mask(self) -> np.ndarray:
        """Boolean ``[N]``: the window holds a non-finite value or ``max |x| > 1.5``."""
        return self._corrupt

    @cached_property
    def _corrupt(self) -> np.ndarray:
        return scan_corrupt(self.windows)

    def corruption_report(self) -> dict:
        """Count, fraction and file ids of corrupt windows."""
        mask = self.corrupt_mask()
        files = sorted({self.file_ids[i] for i in np.unique(self.window_file[mask])})
        return {
            "windows": int(mask.sum()),
            "fraction": float(mask.mean()) if len(mask) else 0.0,
            "files": files,
            "rule": f"non-finite or max|x| > {CORRUPT_ABS_LIMIT}",
        }

    # -- split -----------------------------------------------------------------------------
    def split(self, spec: SplitSpec = SplitSpec()) -> dict[str, list[int]]:
        """File indices per split (``train``, ``val``, ``test``)."""
        return dict(zip(SPLITS, split_files(self.n_files, spec.seed, spec.fractions)))

    def split_fingerprint(self, spec: SplitSpec = SplitSpec()) -> str:
        s = self.split(spec)
        return split_fingerprint(s["train"], s["val"], s["test"], spec.seed, spec.fractions)

    def indices(self, split: str, clean: bool = True, spec: SplitSpec = SplitSpec()) -> np.ndarray:
        """Window indices of one split, in order; ``clean`` drops corrupt windows."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
        files = np.asarray(self.split(spec)[split], dtype=np.int64)
        sel = np.isin(self.window_file, files)
        if clean:
            sel &= ~self.corrupt_mask()
        return np.flatnonzero(sel)

    # -- reading ---------------------------------------------------------------------------
    def read(self, idx: np.ndarray, zero_fill_corrupt: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Windows ``float32 [n, C, T]`` and keypoints ``[n, J, 2]`` for sorted or unsorted ``idx``.

        Reads in ascending index order (fast on memory maps) and restores the requested order.
        With ``zero_fill_corrupt`` the corrupt windows among them come back as zeros.
        """
        idx = np.asarray(idx, dtype=np.int64)
        order = np.argsort(idx, kind="stable")
        x = np.empty((len(idx), *self.window_shape), dtype=np.float32)
        x[order] = self.windows[idx[order]]
        if zero_fill_corrupt:
            x[self.corrupt_mask()[idx]] = 0.0
        return x, self.keypoints[idx]

    # -- identity --------------------------------------------------------------------------
    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 over shapes, file ids, window→file map, labels and a strided sample of windows.

        Hashing every byte of a 15 GB archive would take minutes; 256 evenly spaced windows plus
        all labels identify a dataset for provenance purposes.
        """
        h = hashlib.sha256()
        h.update(repr((self.format_name, tuple(self.windows.shape), self.layout.name)).encode())
        h.update("\n".join(self.file_ids).encode())
        h.update(np.ascontiguousarray(self.window_file).tobytes())
        h.update(np.ascontiguousarray(self.keypoints, dtype=np.float32).tobytes())
        n = len(self)
        if n:
            sample = np.unique(np.linspace(0, n - 1, num=min(n, 256)).astype(np.int64))
            h.update(np.ascontiguousarray(self.windows[sample], dtype=np.float32).tobytes())
        return h.hexdigest()

    def describe(self) -> dict:
        """Summary for ``edgepose data check`` and cards."""
        return {
            "format": self.format_name,
            "path": str(self.path),
            "windows": len(self),
            "window_shape": list(self.window_shape),
            "files": self.n_files,
            "joints": self.layout.n_joints,
            "layout": self.layout.name,
            "fingerprint": self.fingerprint,
        }


def scan_corrupt(windows: WindowSource, chunk: int = 2048) -> np.ndarray:
    """Corrupt-window mask computed chunk by chunk over an array-like ``[N, C, T]``."""
    n = int(windows.shape[0])
    mask = np.zeros(n, dtype=bool)
    for start in range(0, n, chunk):
        block = np.asarray(windows[start : start + chunk])
        flat = block.reshape(block.shape[0], -1)
        finite = np.isfinite(flat).all(axis=1)
        with np.errstate(invalid="ignore", over="ignore"):
            big = np.abs(np.where(np.isfinite(flat), flat, 0)).max(axis=1, initial=0.0) > CORRUPT_ABS_LIMIT
        mask[start : start + block.shape[0]] = ~finite | big
    return mask
