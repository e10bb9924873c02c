"""ONNX Runtime sessions and batched prediction: the one place export, bench and the edge runtime open them."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort

from edgepose.runtime.errors import EdgeposeError
from edgepose.runtime.parallel import ShardPool, check_parallel, shard_bounds, usable_cpus

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


class OrtRunner:
    """One model on ONNX Runtime, run with ``threads`` cores the way ``parallel`` says
    (:data:`edgepose.runtime.parallel.PARALLEL_MODES`).

    ``intra``: one session whose intra-op pool has ``threads`` threads (0 = ONNX Runtime's default,
    its physical cores).
    ``batch``: one session with a single intra-op thread, called from ``threads`` threads at once
    (0 = every CPU this process may use, logical ones included), each on its own contiguous shard of
    the windows; ONNX Runtime allows concurrent ``run`` calls on one session. Only the CPU provider is
    sharded: with a GPU provider first, ``batch`` runs as ``intra`` (:attr:`mode` says which ran).

        >>> r = OrtRunner("model.onnx", threads=2, parallel="batch")
        >>> y = r.run(x)                 # x [64, 540, 20] → two 32-window shards at once
        >>> call = r.bind(x); call()     # the same, with the shards cut once (for timing)
    """

    def __init__(self, model: Path | str | bytes, threads: int = 0, parallel: str = "intra",
                 providers: list[str] | None = None, spinning: bool | None = None,
                 graph_optimization: str = "all", model_format: str | None = None) -> None:
        self.parallel = check_parallel(parallel)
        if threads < 0:
            raise EdgeposeError(f"threads must be ≥ 0 (0 = the default), got {threads}")
        on_cpu = (providers or ["CPUExecutionProvider"])[0] == "CPUExecutionProvider"
        self.sharded = sharded = parallel == "batch" and on_cpu
        if sharded and not threads:
            threads = usable_cpus()
        self.threads = threads
        self.workers = threads if sharded else 1
        self.session = ort_session(model, threads=1 if sharded else threads, providers=providers,
                                   spinning=spinning, graph_optimization=graph_optimization,
                                   model_format=model_format)
        self.input_name = self.session.get_inputs()[0].name
        self._pool = ShardPool(self.workers) if self.workers > 1 else None

    @property
    def mode(self) -> str:
        """The mode that runs: ``batch`` only when sharded (a GPU provider first runs ``intra``)."""
        return "batch" if self.sharded else "intra"

    def describe(self) -> str:
        """How a call uses the cores, in words (for cards, logs and reports)."""
        if self.sharded:
            return f"batch mode: up to {self.workers} shard(s) at once, one thread each"
        return f"intra mode: {self.threads or 'default'} intra-op thread(s)" + (
            " (batch mode shards only on the CPU provider)" if self.parallel == "batch" else "")

    def bind(self, x: np.ndarray) -> Callable[[], np.ndarray]:
        """A zero-argument call that runs ``x`` (cut into shards once, here) and returns the model's first
        output (the shards' outputs concatenated in order)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        run, name = self.session.run, self.input_name
        if self._pool is None or len(x) < 2:
            feed = {name: x}
            return lambda: run(None, feed)[0]
        feeds = [{name: x[a:b]} for a, b in shard_bounds(len(x), self.workers)]  # contiguous row slices
        calls = [lambda f=f: run(None, f)[0] for f in feeds]
        pool = self._pool
        return lambda: np.concatenate(pool.run(calls))

    def run(self, x: np.ndarray) -> np.ndarray:
        """The model's first output for ``x`` (one window or an unsharded call goes straight to the session:
        the streaming path)."""
        if self._pool is None or len(x) < 2:
            return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return self.bind(x)()

    def close(self) -> None:
        """Stop the shard threads."""
        if self._pool is not None:
            self._pool.close()


def ort_predict(sess: ort.InferenceSession | OrtRunner, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Run a session (or a runner) over ``x`` in batches (float32 in; outputs cast to float32)."""
    if isinstance(sess, OrtRunner):
        step = sess.run
    else:
        name = sess.get_inputs()[0].name

        def step(chunk):
            return sess.run(None, {name: chunk})[0]
    outs = [step(np.ascontiguousarray(x[i : i + batch], dtype=np.float32)) for i in range(0, len(x), batch)]
    return np.concatenate(outs).astype(np.float32)
