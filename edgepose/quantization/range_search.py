"""Output-aware activation range search: pick each int8 activation's range by what it does to the output.

Calibrators choose an activation's range from that tensor's own statistics (a percentile, a
histogram's quantization error). The error that matters is the network output's: how one tensor's
rounding and clipping propagate through every layer after it. On the shipped half model, ranges
chosen to minimise each histogram's own error scored no better than the percentile ranges
(docs/quantization.md), while most of a module recipe's loss came from the activations.

This module searches each activation's range against the network output instead. Starting from
the calibrated QDQ graph, every activation ``QuantizeLinear``'s scale is multiplied by each factor of
a small grid in turn (the zero point is kept, so the range ``[lo, hi]`` becomes ``[f·lo, f·hi]``),
and the factor that gives the lowest mean squared error between the int8 and the fp32 graph's
outputs on the calibration windows is kept before the next tensor is tried (coordinate descent in
graph order, one or more sweeps). The biases of int8 convolutions are quantized with the scale of
their input (``bias_scale = input_scale × weight_scale``), so when an input scale changes, their int32
values are requantized from the original float bias with the new scale, as ONNX Runtime's quantizer
would have written them. This is the approach of loss-aware post-training quantization (Nahshan et
al., *Loss Aware Post-training Quantization*, 2019: clipping values chosen for the network's loss
rather than each tensor's), here with a coordinate search on a grid and the output MSE against
the fp32 graph as the loss.

Only activation scales (and the dependent int32 biases) change: the graph's layout, weights and
which nodes run int8 stay as ONNX Runtime's quantizer wrote them, so its speed is unchanged. The
cost is ``tensors × (len(grid) − 1) × sweeps`` runs of the int8 graph over the calibration windows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from edgepose.errors import EdgeposeError
from edgepose.io import atomic_path
from edgepose.runtime.session import OrtRunner, ort_predict

__all__ = ["DEFAULT_GRID", "DEFAULT_SWEEPS", "RangeSearch", "activation_scales", "search_ranges"]

#: Scale factors tried for every activation (1.0, the calibrated range, is always among them).
DEFAULT_GRID: tuple[float, ...] = (0.5, 0.7, 0.85, 1.0, 1.2)
#: Passes over the activations.
DEFAULT_SWEEPS = 1


@dataclass
class _Bias:
    """An int32 bias quantized with an activation's scale: its initializers and its float value."""

    values: str
    scale: str
    float_bias: np.ndarray
    base_scale: np.ndarray


@dataclass
class _Activation:
    """One activation's scale initializer, its calibrated value and the biases that follow it."""

    tensor: str
    scale: str
    base: np.ndarray
    biases: list[_Bias] = field(default_factory=list)


@dataclass(frozen=True)
class RangeSearch:
    """What :func:`search_ranges` changed and what it measured."""

    tensors: int
    factors: dict[str, float]  # activation tensor → the factor kept, only those other than 1.0
    windows: int
    grid: tuple[float, ...]
    sweeps: int
    mse_before: float
    mse_after: float
    runs: int
    seconds: float

    def describe(self) -> dict:
        """The card's ``range_search`` entry."""
        return {"tensors": self.tensors, "changed": len(self.factors), "factors": dict(self.factors),
                "windows": self.windows, "grid": list(self.grid), "sweeps": self.sweeps,
                "output_mse_before": self.mse_before, "output_mse_after": self.mse_after, "runs": self.runs,
                "seconds": round(self.seconds, 1),
                "rule": "each activation QuantizeLinear's scale times the grid factor that minimises the mean squared "
                        "error of the int8 output against the fp32 output on the calibration windows, one tensor at "
                        "a time in graph order; int32 biases requantized with their input's new scale"}


def activation_scales(proto: onnx.ModelProto) -> list[_Activation]:
    """Every activation ``QuantizeLinear``'s scale initializer in graph order, with the int32 biases of the
    convolutions that read that activation through its ``DequantizeLinear``."""
    inits = {i.name: i for i in proto.graph.initializer}
    producer = {o: n for n in proto.graph.node for o in n.output}
    found: dict[str, _Activation] = {}
    for node in proto.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in inits and node.input[1] in inits:
            if node.input[1] not in found:
                found[node.input[1]] = _Activation(node.input[0], node.input[1],
                                                   numpy_helper.to_array(inits[node.input[1]]).copy())
    for node in proto.graph.node:
        if node.op_type != "Conv" or len(node.input) < 3 or not node.input[2]:
            continue
        data, bias = producer.get(node.input[0]), producer.get(node.input[2])
        if data is None or data.op_type != "DequantizeLinear" or data.input[1] not in found:
            continue
        if bias is None or bias.op_type != "DequantizeLinear" or bias.input[0] not in inits:
            continue  # a float bias does not depend on the input's scale
        values = numpy_helper.to_array(inits[bias.input[0]])
        if values.dtype != np.int32 or bias.input[1] not in inits:
            continue
        base_scale = numpy_helper.to_array(inits[bias.input[1]]).astype(np.float64)
        found[data.input[1]].biases.append(_Bias(bias.input[0], bias.input[1],
                                                 values.astype(np.float64) * base_scale, base_scale))
    return list(found.values())


def _apply(inits: dict[str, onnx.TensorProto], act: _Activation, factor: float) -> None:
    """Set ``act``'s scale to ``factor`` × its calibrated scale and requantize the biases that follow it."""
    scale = (act.base.astype(np.float64) * factor).astype(act.base.dtype)
    inits[act.scale].CopyFrom(numpy_helper.from_array(scale, act.scale))
    limits = np.iinfo(np.int32)
    for b in act.biases:
        # the stored scale is what the kernels use, so the integers are rounded against it
        new_scale = (b.base_scale * factor).astype(numpy_helper.to_array(inits[b.scale]).dtype)
        steps = np.clip(np.round(b.float_bias / new_scale.astype(np.float64)), limits.min, limits.max)
        inits[b.values].CopyFrom(numpy_helper.from_array(steps.astype(np.int32), b.values))
        inits[b.scale].CopyFrom(numpy_helper.from_array(new_scale, b.scale))


def search_ranges(fp32_path: Path, qdq_path: Path, windows: np.ndarray, *, grid: tuple[float, ...] = DEFAULT_GRID,
                  sweeps: int = DEFAULT_SWEEPS, threads: int = 2, parallel: str = "batch",
                  log=None) -> RangeSearch:
    """Rewrite ``qdq_path`` in place (atomically) with every activation's range searched against the output.

    ``fp32_path`` is the graph ``qdq_path`` was quantized from (the reference output); ``windows`` are the
    calibration windows. The graph is rewritten only when the search lowered the output error (a graph
    without activation Q/DQ is left untouched). ``threads`` and ``parallel`` say how the candidate graphs
    run (:class:`~edgepose.runtime.session.OrtRunner`); they change the time taken, not the result.
    """
    if len(windows) < 1:
        raise EdgeposeError("the range search needs at least one calibration window", qdq_path)
    factors = tuple(float(f) for f in grid)
    if 1.0 not in factors or any(not np.isfinite(f) or f <= 0 for f in factors):
        raise EdgeposeError(f"range search grid must hold positive factors including 1.0, got {list(grid)}")
    if sweeps < 1:
        raise EdgeposeError(f"range search sweeps must be ≥ 1, got {sweeps}")
    t0 = time.perf_counter()
    x = np.ascontiguousarray(windows, dtype=np.float32)

    def predict(model: Path | bytes) -> np.ndarray:
        runner = OrtRunner(model, threads=threads, parallel=parallel)
        try:
            return ort_predict(runner, x).astype(np.float64)
        finally:
            runner.close()

    proto = onnx.load(str(qdq_path))
    acts = activation_scales(proto)
    ref = predict(Path(fp32_path))
    if not acts:
        return RangeSearch(0, {}, int(len(x)), factors, sweeps, 0.0, 0.0, 0, time.perf_counter() - t0)
    inits = {i.name: i for i in proto.graph.initializer}

    def error() -> float:
        return float(np.mean((predict(proto.SerializeToString()) - ref) ** 2))

    before = best = error()
    runs = 1
    kept = {a.scale: 1.0 for a in acts}
    for sweep in range(sweeps):
        for act in acts:
            choice = kept[act.scale]
            for f in factors:
                if f == kept[act.scale]:
                    continue
                _apply(inits, act, f)
                err = error()
                runs += 1
                if err < best:
                    best, choice = err, f
            kept[act.scale] = choice
            _apply(inits, act, choice)
        if log:
            log(f"range search: sweep {sweep + 1}/{sweeps}, output MSE {before:.3e} → {best:.3e}, "
                f"{sum(f != 1.0 for f in kept.values())} of {len(acts)} ranges changed")
    changed = {a.tensor: kept[a.scale] for a in acts if kept[a.scale] != 1.0}
    if changed:
        with atomic_path(qdq_path) as tmp:
            onnx.save(proto, str(tmp))
    return RangeSearch(len(acts), changed, int(len(x)), factors, sweeps, before, best, runs, time.perf_counter() - t0)
