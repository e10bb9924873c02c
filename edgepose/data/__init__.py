"""CSI datasets: one interface, several on-disk layouts, the reference split and corruption checks."""

from __future__ import annotations

from pathlib import Path

from edgepose.errors import EdgeposeError
from edgepose.data import mmfi, wiflow
from edgepose.data.base import CORRUPT_ABS_LIMIT, CSIDataset, SplitSpec, scan_corrupt
from edgepose.data.split import split_files

#: Layout detectors and openers, tried in order by :func:`open_dataset`.
FORMATS = {
    "wiflow": (wiflow.looks_like, wiflow.WiFlowDataset.open),
    "mmfi": (mmfi.looks_like, mmfi.MMFiDataset.open),
}


def detect_format(path: str | Path) -> str:
    """Name of the layout found at ``path``."""
    path = Path(path)
    if not path.exists():
        raise EdgeposeError("dataset folder not found", path)
    if not path.is_dir():
        raise EdgeposeError("expected a dataset folder", path)
    for name, (looks_like, _) in FORMATS.items():
        if looks_like(path):
            return name
    raise EdgeposeError(
        "no supported dataset layout found (WiFlow needs csi_windows.npy, window_info.npz, "
        "file_info.npz; MM-Fi needs E*/S*/A*/wifi-csi)",
        path,
    )


def open_dataset(path: str | Path, format: str | None = None) -> CSIDataset:
    """Open a dataset folder, detecting its layout unless ``format`` names it."""
    name = format or detect_format(path)
    if name not in FORMATS:
        raise EdgeposeError(f"unknown dataset format {name!r}; known: {sorted(FORMATS)}")
    return FORMATS[name][1](Path(path))


__all__ = [
    "CORRUPT_ABS_LIMIT", "CSIDataset", "FORMATS", "SplitSpec", "detect_format", "open_dataset",
    "scan_corrupt", "split_files",
]
