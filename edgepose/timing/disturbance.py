"""A fixed probe workload that tells whether the machine changed speed during a round.

On a shared machine other tenants' jobs come and go; a round in which the box slowed down (or
sped up) half-way compares artifacts measured under different conditions. The probe is a small
ONNX Runtime graph (a chain of dense matrix products, built in memory, fixed weights) run with
the bench's thread settings before and after each round; a round whose probe times differ by more
than a margin is *disturbed* and left out of the medians.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

#: Default margin: a probe that moved by more than this fraction marks the round as disturbed.
DEFAULT_MARGIN = 0.10


@dataclass(frozen=True)
class ProbeSpec:
    """Size of the probe: ``layers`` dense ``width × width`` products on ``rows`` rows, ``calls`` timed calls."""

    rows: int = 64
    width: int = 384
    layers: int = 4
    calls: int = 25
    warmup: int = 3
    margin: float = DEFAULT_MARGIN


def _model_bytes(spec: ProbeSpec) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1234)
    nodes, inits, prev = [], [], "x"
    for i in range(spec.layers):
        w = (rng.standard_normal((spec.width, spec.width)) / np.sqrt(spec.width)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]), helper.make_node("Relu", [f"m{i}"], [f"r{i}"])]
        prev = f"r{i}"
    graph = helper.make_graph(nodes, "edgepose-probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [spec.rows, spec.width])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [spec.rows, spec.width])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


class DisturbanceProbe:
    """The probe session, built once per bench run; :meth:`time_ms` gives the median call time."""

    def __init__(self, spec: ProbeSpec = ProbeSpec(), threads: int = 0, spinning: bool | None = False) -> None:
        from edgepose.runtime.session import ort_session

        self.spec = spec
        self._sess = ort_session(_model_bytes(spec), threads=threads, spinning=spinning)
        self._feed = {"x": np.random.default_rng(0).standard_normal((spec.rows, spec.width)).astype(np.float32)}

    def time_ms(self) -> float:
        """Median milliseconds of one probe call (after a short warm-up)."""
        for _ in range(self.spec.warmup):
            self._sess.run(None, self._feed)
        times = []
        for _ in range(self.spec.calls):
            t0 = time.perf_counter()
            self._sess.run(None, self._feed)
            times.append(time.perf_counter() - t0)
        return float(np.median(times) * 1e3)


def moved(probe_ms: list[float]) -> float:
    """How far the probe moved within a round: ``max / min − 1`` over its readings."""
    return max(probe_ms) / min(probe_ms) - 1 if probe_ms and min(probe_ms) > 0 else 0.0
