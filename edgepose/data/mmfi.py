"""Reader for the MM-Fi WiFi-CSI layout (NeurIPS 2023 dataset).

Tree: ``[extra top folder/]E01..E04/S01..S40/A01..A27/wifi-csi/frameNNN.mat`` with ``CSIamp``
(and usually ``CSIphase``) of shape ``(3, 114, 10)`` — antennas × subcarriers × packets — and
one ``ground_truth.npy`` ``(frames, 17, 3)`` per sequence (metres, Human3.6M-17, pelvis root).

Each sequence is one *file* for the split. Each frame becomes a window ``[342, 10]`` after the
MM-Fi toolbox's cleaning: ``inf → NaN``; NaN replaced by the mean of its packet slice
``[:, :, p]``; per-frame min–max scaling. A packet with no finite value has no mean to repair
from: the toolbox's cleaning turns such a frame into NaN, and so does this reader, which makes
it a corrupt window. Zero-byte frame files are dropped with their label.
The model predicts 2-D points, so the label keeps the first two coordinates (x, y) of each joint.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgepose.errors import EdgeposeError
from edgepose.io import open_npy
from edgepose.skeleton import H36M_17
from edgepose.data.base import CSIDataset

_FRAME = re.compile(r"frame(\d+)\.mat$")


def looks_like(path: Path) -> bool:
    """True when ``path`` (or one folder below it) holds ``E*/S*/A*/wifi-csi`` sequences."""
    return bool(_sequence_dirs(path, limit=1))


def _sequence_dirs(root: Path, limit: int | None = None) -> list[Path]:
    found: list[Path] = []
    if not root.is_dir():
        return found
    for base in (root, *[p for p in sorted(root.iterdir()) if p.is_dir()]):
        for seq in sorted(base.glob("E*/S*/A*")):
            if (seq / "wifi-csi").is_dir():
                found.append(seq)
                if limit and len(found) >= limit:
                    return found
        if found:
            return found
    return found


def clean_frame(amp: np.ndarray) -> np.ndarray:
    """MM-Fi toolbox cleaning of one ``(3, 114, 10)`` amplitude frame → ``float32 [342, 10]``.

    A frame with a packet that holds no finite value comes back as all NaN (a corrupt window).
    """
    x = np.array(amp, dtype=np.float64)
    x[np.isinf(x)] = np.nan
    with np.errstate(over="ignore", invalid="ignore"):
        for p in range(x.shape[-1]):
            sl = x[..., p]
            bad = np.isnan(sl)
            if bad.all():
                return np.full((x.size // x.shape[-1], x.shape[-1]), np.nan, dtype=np.float32)
            if bad.any():
                sl[bad] = np.nanmean(sl)
        lo, hi = x.min(), x.max()
        x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return x.reshape(-1, x.shape[-1]).astype(np.float32)


def read_frame(path: Path) -> np.ndarray:
    """The raw ``CSIamp`` array ``(antennas, subcarriers, packets)`` of one MM-Fi ``.mat`` frame.

    Raises :class:`EdgeposeError` naming the file for an unreadable file, a missing variable, or
    an array that is not a non-empty 3-D array of real numbers.
    """
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises ValueError/TypeError/MatReadError/… for broken files
        raise EdgeposeError(f"cannot read MATLAB file ({type(exc).__name__}: {exc})", path) from None
    amp = mat.get("CSIamp")
    if amp is None:
        raise EdgeposeError("no CSIamp variable", path)
    if not isinstance(amp, np.ndarray) or amp.dtype.kind not in "biuf":
        kind = amp.dtype if isinstance(amp, np.ndarray) else type(amp).__name__
        raise EdgeposeError(f"CSIamp must hold real numbers, got {kind}", path)
    if amp.ndim != 3:
        raise EdgeposeError(f"CSIamp has shape {amp.shape}, expected (antennas, subcarriers, packets)", path)
    if amp.size == 0:
        raise EdgeposeError(f"CSIamp is empty (shape {amp.shape})", path)
    return amp


class _LazyFrames:
    """Array-like ``[N, 342, 10]`` that reads and cleans ``.mat`` frames on access."""

    def __init__(self, files: list[Path], window_shape: tuple[int, int]) -> None:
        self.files = files
        self.shape = (len(files), *window_shape)
        self.dtype = np.dtype(np.float32)

    def _one(self, i: int) -> np.ndarray:
        path = self.files[i]
        out = clean_frame(read_frame(path))
        if out.shape != self.shape[1:]:
            raise EdgeposeError(f"CSIamp gives a {out.shape} window, expected {self.shape[1:]}", path)
        return out

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            idx = range(*idx.indices(self.shape[0]))
        if np.ndim(idx) == 0:
            return self._one(int(idx))
        return np.stack([self._one(int(i)) for i in idx]) if len(idx) else np.empty((0, *self.shape[1:]), np.float32)


class MMFiDataset(CSIDataset):
    """MM-Fi WiFi-CSI sequences, one split *file* per (environment, subject, action)."""

    format_name = "mmfi"

    @classmethod
    def open(cls, path: str | Path) -> "MMFiDataset":
        path = Path(path)
        seqs = _sequence_dirs(path)
        if not seqs:
            raise EdgeposeError("no E*/S*/A*/wifi-csi sequences found", path)
        files: list[Path] = []
        labels: list[np.ndarray] = []
        owner: list[int] = []
        file_ids: list[str] = []
        shape = None
        for s_idx, seq in enumerate(seqs):
            gt_path = seq / "ground_truth.npy"
            if not gt_path.is_file():
                raise EdgeposeError("missing ground_truth.npy", seq)
            gt = open_npy(gt_path, mmap=False)
            if gt.ndim != 3 or gt.shape[1:] != (17, 3):
                raise EdgeposeError(f"expected (frames, 17, 3), got {gt.shape}", gt_path)
            if gt.dtype.kind not in "biuf":
                raise EdgeposeError(f"expected real numbers, got {gt.dtype}", gt_path)
            frames = sorted(
                ((int(m.group(1)), p) for p in (seq / "wifi-csi").iterdir() if (m := _FRAME.search(p.name))),
            )
            for num, frame_path in frames:
                if frame_path.stat().st_size == 0 or not 1 <= num <= len(gt):
                    continue  # zero-byte frames (known in the public archive) are dropped
                files.append(frame_path)
                labels.append(gt[num - 1, :, :2])
                owner.append(s_idx)
            if shape is None and files:
                amp = read_frame(files[-1])
                shape = (amp.shape[0] * amp.shape[1], amp.shape[2])
            file_ids.append("/".join(seq.parts[-3:]))
        if not files:
            raise EdgeposeError("every frame file is empty", path)
        windows = _LazyFrames(files, shape)
        keypoints = np.asarray(labels, dtype=np.float32)
        return cls(path, windows, keypoints, np.asarray(owner), file_ids, H36M_17)
