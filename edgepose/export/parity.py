"""Parity between a torch model and an ONNX artifact on the same windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..metrics import pck
from .onnx_fp32 import INPUT_NAME


def ort_session(path: Path, threads: int = 0, providers: list[str] | None = None) -> ort.InferenceSession:
    """An ONNX Runtime session with full graph optimisation."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=providers or ["CPUExecutionProvider"])


def ort_predict(sess: ort.InferenceSession, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Run a session over ``x`` in batches (float32 in; outputs cast to float32)."""
    outs = [sess.run(None, {INPUT_NAME: np.ascontiguousarray(x[i : i + batch], dtype=np.float32)})[0]
            for i in range(0, len(x), batch)]
    return np.concatenate(outs).astype(np.float32)


def parity(reference: np.ndarray, candidate: np.ndarray, gt: np.ndarray | None = None,
           torso: tuple[int, int] = (2, 12)) -> dict:
    """Max/mean absolute output difference and, with labels, PCK@20 of both."""
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    out = {"windows": int(len(reference)), "max_abs_error": float(diff.max()), "mean_abs_error": float(diff.mean())}
    if gt is not None:
        out["reference_pck20"] = pck(reference, gt, (0.2,), torso)[0.2]
        out["candidate_pck20"] = pck(candidate, gt, (0.2,), torso)[0.2]
    return out
