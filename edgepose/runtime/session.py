"""ONNX Runtime sessions and batched prediction: the one place export, bench and the edge runtime open them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

#: Name of the model input in every edgepose ONNX graph.
INPUT_NAME = "csi"
#: Name of the model output.
OUTPUT_NAME = "keypoints"


#: ``graph_optimization`` names → ONNX Runtime levels.
OPTIMIZATION_LEVELS = {
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
}


def ort_session(path: Path | str | bytes, threads: int = 0, providers: list[str] | None = None,
                spinning: bool | None = None, graph_optimization: str = "all",
                model_format: str | None = None) -> ort.InferenceSession:
    """An ONNX Runtime session, by default with full graph optimisation.

    ``path`` may be a file or the serialized model bytes. ``threads`` > 0 fixes the intra-op pool
    (one inter-op thread); ``spinning`` False stops idle pool threads from busy-waiting.
    ``graph_optimization`` is one of :data:`OPTIMIZATION_LEVELS`; ``model_format`` ``"ORT"``
    loads ONNX Runtime's own flatbuffer format (``.ort``) rather than ONNX.
    """
    so = ort.SessionOptions()
    so.graph_optimization_level = OPTIMIZATION_LEVELS[graph_optimization]
    so.log_severity_level = 3
    if model_format:
        so.add_session_config_entry("session.load_model_format", model_format)
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    if spinning is not None:
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, so, providers=providers or ["CPUExecutionProvider"])


def ort_predict(sess: ort.InferenceSession, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Run a session over ``x`` in batches (float32 in; outputs cast to float32)."""
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: np.ascontiguousarray(x[i : i + batch], dtype=np.float32)})[0]
            for i in range(0, len(x), batch)]
    return np.concatenate(outs).astype(np.float32)
