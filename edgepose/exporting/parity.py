"""Parity between a torch model and an ONNX artifact on the same windows."""

from __future__ import annotations

import numpy as np

from edgepose.metrics import pck
from edgepose.runtime.session import ort_predict, ort_session

__all__ = ["ort_predict", "ort_session", "parity"]


def parity(reference: np.ndarray, candidate: np.ndarray, gt: np.ndarray | None = None,
           torso: tuple[int, int] = (2, 12)) -> dict:
    """Max/mean absolute output difference and, with labels, PCK@20 of both."""
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    out = {"windows": int(len(reference)), "max_abs_error": float(diff.max()), "mean_abs_error": float(diff.mean())}
    if gt is not None:
        out["reference_pck20"] = pck(reference, gt, (0.2,), torso)[0.2]
        out["candidate_pck20"] = pck(candidate, gt, (0.2,), torso)[0.2]
    return out
