"""Runtime adapters: the smallest thing that can load an ONNX graph and time a call on this box.

The latency-aware precision plan (:mod:`edgepose.quantization.planning`) asks one question of a runtime —
*how long does this graph take on this input?* — so a runtime plugs in as an adapter with a
name, a version (part of every cache key), an availability check and a ``load`` that returns a
function binding an input to a timed call. ONNX Runtime's CPU provider is the default; OpenVINO
runs the same QDQ files and is used when its package is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgepose.errors import EdgeposeError

#: A loaded graph: bind an input once, get back the zero-argument call to time (it returns the first output).
Prepared = Callable[[np.ndarray], Callable[[], object]]


@dataclass(frozen=True)
class RuntimeAdapter:
    """Base class: ``name`` (registry key), ``package`` (what to install) and the three methods."""

    name: str = "abstract"
    package: str = ""

    def available(self) -> tuple[bool, str]:
        """(True, "") when the runtime can be used here, else (False, why)."""
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def load(self, model: Path | bytes, threads: int, parallel: str = "intra") -> Prepared:
        """Load ``model`` (a path or serialized ONNX) to run on ``threads`` cores (0 = the runtime's default):
        ``parallel`` ``intra`` on the runtime's own thread pool, ``batch`` as one shard of each call's
        windows per thread at once (:mod:`edgepose.runtime.parallel`)."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version()}


@dataclass(frozen=True)
class OnnxRuntimeCpu(RuntimeAdapter):
    """ONNX Runtime, CPU execution provider, full graph optimisation, idle threads not spinning."""

    name: str = "onnxruntime"
    package: str = "onnxruntime"

    def available(self):
        return True, ""

    def version(self) -> str:
        import onnxruntime

        return onnxruntime.__version__

    def load(self, model, threads, parallel="intra"):
        from edgepose.runtime.session import OrtRunner

        return OrtRunner(model, threads=threads, parallel=parallel, spinning=False).bind


@dataclass(frozen=True)
class OpenVinoCpu(RuntimeAdapter):
    """OpenVINO on the CPU device (it reads QDQ ONNX and runs the quantized convolutions as u8).

    Float parts run in f32: OpenVINO's CPU plugin would otherwise run them in bf16 on CPUs with
    AVX-512 BF16 or AMX, which is faster but no longer the graph whose accuracy was scored.
    """

    name: str = "openvino"
    package: str = "openvino"

    def available(self):
        try:
            import openvino  # noqa: F401
        except ImportError:
            return False, "OpenVINO is not installed (pip install openvino)"
        return True, ""

    def version(self) -> str:
        import openvino

        return openvino.__version__

    def load(self, model, threads, parallel="intra"):
        import openvino as ov

        from edgepose.runtime.parallel import check_parallel, shard_bounds, usable_cpus

        # batch: OpenVINO's own form of it, one CPU stream (one thread) per shard, run asynchronously
        workers = (threads or usable_cpus()) if check_parallel(parallel) == "batch" else 1
        core = ov.Core()
        graph = core.read_model(model=model if isinstance(model, bytes) else str(model),
                                **({"weights": b""} if isinstance(model, bytes) else {}))
        config = {"INFERENCE_PRECISION_HINT": "f32", **({"INFERENCE_NUM_THREADS": int(threads)} if threads else {})}
        if workers > 1:
            config.update(NUM_STREAMS=workers, INFERENCE_NUM_THREADS=workers)
        compiled = core.compile_model(graph, "CPU", config)
        requests = [compiled.create_infer_request() for _ in range(workers)]  # a request runs one call at a time

        def prepare(x: np.ndarray):
            x = np.ascontiguousarray(x, dtype=np.float32)
            if workers == 1 or len(x) < 2:
                return lambda: requests[0].infer([x])[0]
            shards = [(r, x[a:b]) for r, (a, b) in zip(requests, shard_bounds(len(x), workers))]

            def call():
                started = []
                try:
                    for r, part in shards:
                        r.start_async([part])
                        started.append(r)
                finally:  # no request is left running into the next call, even when one fails
                    for r in started:
                        r.wait()
                return np.concatenate([r.get_output_tensor(0).data for r, _ in shards])

            return call

        return prepare


#: adapter name → adapter. Register another runtime by adding an instance here.
ADAPTERS: dict[str, RuntimeAdapter] = {a.name: a for a in (OnnxRuntimeCpu(), OpenVinoCpu())}


def get_adapter(name: str) -> RuntimeAdapter:
    """The adapter called ``name``, checked to be usable on this machine."""
    if name not in ADAPTERS:
        raise EdgeposeError(f"unknown runtime {name!r}; choose from {', '.join(ADAPTERS)}")
    adapter = ADAPTERS[name]
    ok, why = adapter.available()
    if not ok:
        raise EdgeposeError(f"runtime {name} cannot be used here: {why}")
    return adapter


__all__ = ["ADAPTERS", "OnnxRuntimeCpu", "OpenVinoCpu", "Prepared", "RuntimeAdapter", "get_adapter"]
