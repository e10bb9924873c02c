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
graph order, one or more sweeps). The int32 biases of int8 convolutions (and ``Gemm``/``ConvTranspose``)
are quantized with the scale of their input (``bias_scale = input_scale × weight_scale``), so when an
input scale changes, they are requantized from the fp32 graph's float bias with the new scale, as
ONNX Runtime's quantizer would have written them; a factor whose bias would not fit in int32 is not
tried. This is the approach of loss-aware post-training quantization (Nahshan et
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
from typing import Callable

import numpy as np
import onnx
from onnx import numpy_helper

from edgepose.errors import EdgeposeError
from edgepose.io import atomic_path
from edgepose.runtime.session import OrtRunner, ort_predict

__all__ = ["DEFAULT_GRID", "DEFAULT_SWEEPS", "ActivationScale", "RangeSearch", "ScaledBias", "activation_scales",
           "apply_factor", "apply_scale_factors", "search_ranges"]

#: Scale factors tried for every activation (1.0, the calibrated range, is always among them).
DEFAULT_GRID: tuple[float, ...] = (0.5, 0.7, 0.85, 1.0, 1.2)
#: Passes over the activations.
DEFAULT_SWEEPS = 1
#: Ops whose int32 bias (input 2) ONNX Runtime's quantizer writes at ``input scale × weight scale``.
_BIASED_OPS = ("Conv", "ConvTranspose", "Gemm")
_INT32 = np.iinfo(np.int32)


@dataclass
class ScaledBias:
    """An int32 bias quantized with an activation's scale: its initializers, its float value and calibrated scale."""

    values: str
    scale: str
    float_bias: np.ndarray
    base_scale: np.ndarray
    base_values: np.ndarray


@dataclass
class ActivationScale:
    """One activation ``QuantizeLinear``'s scale initializer (``tensor``: the first tensor quantized with it), its
    calibrated value and the biases that follow it."""

    tensor: str
    scale: str
    base: np.ndarray
    biases: list[ScaledBias] = field(default_factory=list)


@dataclass(frozen=True)
class RangeSearch:
    """What :func:`search_ranges` changed and what it measured."""

    tensors: int
    factors: dict[str, float]  # activation tensor → the factor kept, only those other than 1.0
    scales: dict[str, float]   # the same, by scale initializer (how :func:`apply_scale_factors` finds them)
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
                        "a time in graph order; int32 biases requantized from the fp32 bias with their input's new "
                        "scale; tensors counted by scale initializer (a scale shared by several tensors counts once, "
                        "named by the first)"}


def activation_scales(proto: onnx.ModelProto, fp32: onnx.ModelProto | None = None) -> list[ActivationScale]:
    """Every activation ``QuantizeLinear``'s scale initializer in graph order, with the int32 biases of the ops
    that read that activation through its ``DequantizeLinear``. A bias's float value comes from ``fp32`` (the
    graph ``proto`` was quantized from: the bias ``DequantizeLinear`` writes the float bias's name) when it holds
    it, else from the int32 values dequantized."""
    inits = {i.name: i for i in proto.graph.initializer}
    floats = {i.name: i for i in fp32.graph.initializer} if fp32 is not None else {}
    producer = {o: n for n in proto.graph.node for o in n.output}
    found: dict[str, ActivationScale] = {}
    for node in proto.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in inits and node.input[1] in inits:
            if node.input[1] not in found:
                found[node.input[1]] = ActivationScale(node.input[0], node.input[1],
                                                       numpy_helper.to_array(inits[node.input[1]]).copy())
    for node in proto.graph.node:
        if node.op_type not in _BIASED_OPS or len(node.input) < 3 or not node.input[2]:
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
        held = floats.get(bias.output[0])
        float_bias = numpy_helper.to_array(held).astype(np.float64) if held is not None else None
        if float_bias is None or float_bias.shape != values.shape:
            float_bias = values.astype(np.float64) * base_scale
        found[data.input[1]].biases.append(ScaledBias(bias.input[0], bias.input[1], float_bias, base_scale,
                                                      values.copy()))
    return list(found.values())


def apply_factor(inits: dict[str, onnx.TensorProto], act: ActivationScale, factor: float) -> bool:
    """Set ``act``'s scale to ``factor`` × its calibrated scale and requantize the biases that follow it.

    Returns False, changing nothing, when a requantized bias would not fit in int32.
    """
    new = []
    for b in act.biases:
        dtype = numpy_helper.to_array(inits[b.scale]).dtype
        if factor == 1.0:  # the calibrated graph, exactly as the quantizer wrote it
            new.append((b, b.base_values, b.base_scale.astype(dtype)))
            continue
        # the stored scale is what the kernels use, so the integers are rounded against it
        scale = (b.base_scale * factor).astype(dtype)
        steps = np.round(b.float_bias / scale.astype(np.float64))
        if np.any(steps < _INT32.min) or np.any(steps > _INT32.max):
            return False
        new.append((b, steps.astype(np.int32), scale))
    value = (act.base.astype(np.float64) * factor).astype(act.base.dtype)
    inits[act.scale].CopyFrom(numpy_helper.from_array(value, act.scale))
    for b, steps, scale in new:
        inits[b.values].CopyFrom(numpy_helper.from_array(steps, b.values))
        inits[b.scale].CopyFrom(numpy_helper.from_array(scale, b.scale))
    return True


def apply_scale_factors(proto: onnx.ModelProto, scales: dict[str, float], fp32: onnx.ModelProto | None = None) -> int:
    """Apply searched factors (``RangeSearch.scales``: scale initializer → factor) to another QDQ graph of the same
    model, in place; returns how many of its scales changed. This is how a graph built for another set of int8 nodes
    gets the searched ranges: by the same edit, not by recomputing ranges (ONNX Runtime's quantizer overrides some,
    e.g. a ``Softmax`` output's)."""
    inits = {i.name: i for i in proto.graph.initializer}
    changed = 0
    for act in activation_scales(proto, fp32):
        factor = scales.get(act.scale, 1.0)
        if factor != 1.0 and apply_factor(inits, act, factor):
            changed += 1
    return changed


def search_ranges(fp32_path: Path, qdq_path: Path, windows: np.ndarray, *, grid: tuple[float, ...] = DEFAULT_GRID,
                  sweeps: int = DEFAULT_SWEEPS, threads: int = 2, parallel: str = "batch",
                  log: Callable[[str], None] | None = None) -> RangeSearch:
    """Rewrite ``qdq_path`` in place (atomically) with every activation's range searched against the output.

    ``fp32_path`` is the graph ``qdq_path`` was quantized from (the reference output and the float biases);
    ``windows`` are the calibration windows. The graph is rewritten only when the search changed a range (a
    graph without activation Q/DQ is left untouched). ``threads`` and ``parallel`` say how the candidate graphs
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
    acts = activation_scales(proto, onnx.load(str(fp32_path)))
    if not acts:
        return RangeSearch(0, {}, {}, int(len(x)), factors, sweeps, 0.0, 0.0, 0, time.perf_counter() - t0)
    ref = predict(Path(fp32_path))
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
                if f == kept[act.scale] or not apply_factor(inits, act, f):
                    continue
                err = error()
                runs += 1
                if err < best:
                    best, choice = err, f
            kept[act.scale] = choice
            apply_factor(inits, act, choice)
        if log:
            log(f"range search: sweep {sweep + 1}/{sweeps}, output MSE {before:.3e} → {best:.3e}, "
                f"{sum(f != 1.0 for f in kept.values())} of {len(acts)} ranges changed")
    changed = {a.tensor: kept[a.scale] for a in acts if kept[a.scale] != 1.0}
    scales = {a.scale: kept[a.scale] for a in acts if kept[a.scale] != 1.0}
    if changed:
        with atomic_path(qdq_path) as tmp:
            onnx.save(proto, str(tmp))
    return RangeSearch(len(acts), changed, scales, int(len(x)), factors, sweeps, before, best, runs,
                       time.perf_counter() - t0)
