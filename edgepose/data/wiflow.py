"""Reader for the WiFlow preprocessed layout (also what ``edgepose data synth`` writes).

Folder contents::

    csi_windows.npy    (N, 540, 20) float32, memory-mapped — the public archive is 15.5 GB
    window_info.npz    window_to_file (N,) file index, window_to_frame (N,) label frame
    file_info.npz      file_ids (n_files,), window_ranges (n_files, 2) [start, end),
                       keypoints_files (n_files,) CSV paths (may be the author's absolute paths)
    all_keypoints.npy  (frames, 15, 2) labels already in pixel/1000 — or, instead, one CSV per file

With ``all_keypoints.npy`` a window's label is ``all_keypoints[window_to_frame[i]]``. With CSV
labels, ``window_to_frame`` indexes the rows of the window's own file. CSV files hold a header
row and OpenPose BODY_25 in their last 50 columns (x, y pairs in pixels); they are divided by
``keypoint_scale`` (1000), joints 0–14 are kept, and a joint at exactly (0, 0) — OpenPose's
"not detected" — is linearly interpolated in time (copied at the ends).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgepose.errors import EdgeposeError
from edgepose.io import load_npz, open_npy
from edgepose.skeleton import BODY25_15
from edgepose.data.base import CSIDataset

REQUIRED = ("csi_windows.npy", "window_info.npz", "file_info.npz")
KEYPOINT_SCALE = 1000.0
BODY25_COLUMNS = 50


def looks_like(path: Path) -> bool:
    """True when ``path`` holds any of the WiFlow files (the opener then names what is missing)."""
    return any((path / name).is_file() for name in REQUIRED)


class WiFlowDataset(CSIDataset):
    """The WiFlow preprocessed layout; see the module docstring."""

    format_name = "wiflow"

    @classmethod
    def open(cls, path: str | Path, keypoint_scale: float = KEYPOINT_SCALE) -> "WiFlowDataset":
        """Open and validate a dataset folder; every inconsistency raises :class:`EdgeposeError`."""
        path = Path(path)
        for name in REQUIRED:
            if not (path / name).is_file():
                raise EdgeposeError(f"missing {name} (WiFlow layout needs {', '.join(REQUIRED)})", path)
        win_path = path / "csi_windows.npy"
        windows = open_npy(win_path)
        if windows.ndim != 3:
            raise EdgeposeError(f"expected windows of shape (N, C, T), got {windows.shape}", win_path)
        if windows.dtype != np.float32:
            raise EdgeposeError(f"expected float32 windows, got {windows.dtype}", win_path)
        n = windows.shape[0]
        if n == 0 or windows.shape[1] == 0 or windows.shape[2] == 0:
            raise EdgeposeError(f"holds no data: windows of shape {windows.shape}", win_path)

        info_path = path / "window_info.npz"
        info = load_npz(info_path)
        for key in ("window_to_file", "window_to_frame"):
            if key not in info:
                raise EdgeposeError(f"missing array {key!r}", info_path)
            if info[key].shape != (n,):
                raise EdgeposeError(
                    f"{key} has shape {info[key].shape} but csi_windows.npy holds {n} windows", info_path
                )
            if not np.issubdtype(info[key].dtype, np.integer):
                raise EdgeposeError(f"{key} must hold integers, got {info[key].dtype}", info_path)
        w2file = info["window_to_file"].astype(np.int64)
        w2frame = info["window_to_frame"].astype(np.int64)

        finfo_path = path / "file_info.npz"
        finfo = load_npz(finfo_path)
        for key in ("file_ids", "window_ranges"):
            if key not in finfo:
                raise EdgeposeError(f"missing array {key!r}", finfo_path)
        file_ids = [str(f) for f in finfo["file_ids"].reshape(-1)]
        ranges = finfo["window_ranges"]
        if not np.issubdtype(ranges.dtype, np.integer):
            raise EdgeposeError(f"window_ranges must hold integers, got {ranges.dtype}", finfo_path)
        if ranges.shape != (len(file_ids), 2):
            raise EdgeposeError(f"window_ranges has shape {ranges.shape}, expected ({len(file_ids)}, 2)", finfo_path)
        if len(file_ids) and (ranges.min() < 0 or ranges.max() > n or (ranges[:, 1] < ranges[:, 0]).any()):
            raise EdgeposeError(f"window_ranges reach outside the {n} windows of csi_windows.npy", finfo_path)
        if (w2file < 0).any() or (w2file >= len(file_ids)).any():
            raise EdgeposeError(f"window_to_file names files outside 0..{len(file_ids) - 1}", info_path)
        for f, (start, end) in enumerate(ranges):
            if (w2file[start:end] != f).any():
                raise EdgeposeError(
                    f"window_ranges[{f}] = [{start}, {end}) disagrees with window_to_file", finfo_path
                )

        kp_path = path / "all_keypoints.npy"
        if kp_path.is_file():
            frames = open_npy(kp_path, mmap=False)
            if frames.dtype.kind not in "biuf":
                raise EdgeposeError(f"expected real-valued keypoints, got {frames.dtype}", kp_path)
            frames = frames.astype(np.float32)
            if frames.ndim != 3 or frames.shape[1:] != (BODY25_15.n_joints, 2):
                raise EdgeposeError(f"expected keypoints of shape (frames, 15, 2), got {frames.shape}", kp_path)
            if (w2frame < 0).any() or (w2frame >= len(frames)).any():
                raise EdgeposeError(
                    f"window_to_frame points outside the {len(frames)} frames of all_keypoints.npy", info_path
                )
            keypoints = frames[w2frame]
        else:
            if "keypoints_files" not in finfo:
                raise EdgeposeError("no all_keypoints.npy and no keypoints_files in file_info.npz", path)
            keypoints = _labels_from_csv(path, finfo["keypoints_files"], w2file, w2frame, keypoint_scale)
        return cls(path, windows, keypoints, w2file, file_ids, BODY25_15)


def _labels_from_csv(
    root: Path, names: np.ndarray, w2file: np.ndarray, w2frame: np.ndarray, scale: float
) -> np.ndarray:
    """Per-window labels from one OpenPose CSV per file, resolved by file name under ``root``."""
    index = {}
    for p in root.rglob("*.csv"):
        index.setdefault(p.name, p)
    out = np.empty((len(w2file), BODY25_15.n_joints, 2), dtype=np.float32)
    for f, raw in enumerate(names.reshape(-1)):
        name = Path(str(raw).replace("\\", "/")).name
        if name not in index:
            raise EdgeposeError(f"keypoint CSV {name!r} (listed for file {f}) not found in the dataset folder", root)
        kp = read_openpose_csv(index[name], scale)
        sel = np.flatnonzero(w2file == f)
        frames = w2frame[sel]
        if len(frames) and (frames.min() < 0 or frames.max() >= len(kp)):
            raise EdgeposeError(
                f"window_to_frame asks for frame {frames.max()} but the CSV has {len(kp)} rows", index[name]
            )
        out[sel] = kp[frames]
    return out


def read_openpose_csv(path: str | Path, scale: float = KEYPOINT_SCALE) -> np.ndarray:
    """OpenPose BODY_25 CSV → ``float32 [T, 15, 2]`` in ``pixel/scale`` with gaps interpolated."""
    path = Path(path)
    try:
        rows = [line.split(",") for line in path.read_text().splitlines()[1:] if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeposeError(f"cannot read as text ({exc})", path) from None
    if not rows:
        raise EdgeposeError("no data rows below the header", path)
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise EdgeposeError(f"rows have different column counts {sorted(widths)}", path)
    width = widths.pop()
    if width < BODY25_COLUMNS:
        raise EdgeposeError(f"has {width} columns; OpenPose BODY_25 needs at least {BODY25_COLUMNS}", path)
    try:
        values = np.array([r[-BODY25_COLUMNS:] for r in rows], dtype=np.float64)
    except ValueError as exc:
        raise EdgeposeError(f"non-numeric keypoint value ({exc})", path) from None
    kp = (values / scale).reshape(len(rows), 25, 2)[:, : BODY25_15.n_joints]
    return interpolate_missing(kp).astype(np.float32)


def interpolate_missing(kp: np.ndarray) -> np.ndarray:
    """Fill joints at exactly (0, 0) by linear interpolation over time, edge values copied."""
    kp = kp.copy()
    t = np.arange(kp.shape[0])
    missing = (kp[..., 0] == 0) & (kp[..., 1] == 0)
    for j in range(kp.shape[1]):
        gone = missing[:, j]
        if gone.any() and not gone.all():
            for c in range(2):
                kp[gone, j, c] = np.interp(t[gone], t[~gone], kp[~gone, j, c])
    return kp
