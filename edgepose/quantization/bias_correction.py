"""Empirical bias correction of a QDQ graph: give every int8 convolution's output the fp32 mean again.

Rounding and clipping the inputs, weights and output of a convolution shift the *mean* of what
the next layer reads, per output channel, and the shifts add up through the network. The mean
shift is cheap to remove: one pass over the calibration windows through the fp32 graph and one
through the int8 graph gives, for every convolution whose input is dequantized int8,

    δ_c = mean over windows and positions of (fp32 output_c − int8 output_c),

and ``δ_c`` is added to the convolution's bias (in the bias's own int32 steps when the bias is
quantized). The int8 output is read where the next layer reads it: after the convolution's
QuantizeLinear/DequantizeLinear pair when it has one, so the correction also covers the output's
requantization. This is the data-driven variant of the bias correction of Nagel et al., *Data-Free
Quantization Through Weight Equalization and Bias Correction* (ICCV 2019); all convolutions are
corrected from one pass each (a layer-by-layer pass that re-measures after every layer was not
better on the shipped half model, and repeated passes diverge where an output saturates).

Only biases change: weights, scales, zero points and the graph's layout stay as ONNX Runtime's
quantizer wrote them, so the speed of the graph is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from edgepose.errors import EdgeposeError
from edgepose.io import atomic_path
from edgepose.quantization.calibrators import tensor_batches

__all__ = ["BiasCorrection", "correct_biases"]

_INT32 = (-(2 ** 31), 2 ** 31 - 1)


@dataclass(frozen=True)
class _Site:
    """One correctable convolution: its fp32 output name, where int8 reads it, and its bias initializer."""

    output: str
    tap: str
    bias: str
    bias_scale: str | None  # the bias DequantizeLinear's scale initializer; None for a float bias


@dataclass(frozen=True)
class BiasCorrection:
    """What :func:`correct_biases` changed: convolutions corrected, windows used, the largest shift."""

    convs: int
    windows: int
    max_shift: float  # largest |δ_c| added, in the convolution's output units

    def describe(self) -> dict:
        """The card's ``bias_correction`` entry."""
        return {"convs": self.convs, "windows": self.windows, "max_shift": self.max_shift,
                "rule": "per output channel, mean of (fp32 − int8) conv output on the calibration windows added "
                        "to the bias (one pass; the int8 output read after its requantization)"}


def _sites(proto: onnx.ModelProto) -> list[_Site]:
    """The convolutions fed by a DequantizeLinear whose bias is an initializer (quantized or float) of their own."""
    inits = {i.name for i in proto.graph.initializer}
    producer = {o: n for n in proto.graph.node for o in n.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in proto.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)

    def dequantized(tensor: str) -> str:
        q = next((n for n in readers.get(tensor, []) if n.op_type == "QuantizeLinear"), None)
        dq = q and next((n for n in readers.get(q.output[0], []) if n.op_type == "DequantizeLinear"), None)
        return dq.output[0] if dq else tensor

    sites = []
    for node in proto.graph.node:
        if node.op_type != "Conv" or len(node.input) < 3 or not node.input[2]:
            continue
        src = producer.get(node.input[0])
        if src is None or src.op_type != "DequantizeLinear":
            continue  # a float convolution: nothing to correct
        bias = node.input[2]
        bias_dq = producer.get(bias)
        if bias_dq is not None and bias_dq.op_type == "DequantizeLinear" and bias_dq.input[0] in inits:
            owner, scale = bias_dq.input[0], bias_dq.input[1]
            if len(readers.get(bias, [])) > 1 or len(readers.get(owner, [])) > 1:
                continue
        elif bias in inits and len(readers.get(bias, [])) == 1:
            owner, scale = bias, None
        else:
            continue
        sites.append(_Site(node.output[0], dequantized(node.output[0]), owner, scale))
    return sites


def correct_biases(fp32_path: Path, qdq_path: Path, windows: np.ndarray, chunk: int = 64) -> BiasCorrection:
    """Rewrite ``qdq_path`` in place (atomically) with every int8 convolution's bias corrected.

    ``fp32_path`` is the graph ``qdq_path`` was quantized from (its convolution outputs carry the
    same names); ``windows`` are the calibration windows. A graph with no int8 convolution is left
    untouched. ``chunk`` changes memory use only.
    """
    if len(windows) < 1:
        raise EdgeposeError("bias correction needs at least one calibration window", qdq_path)
    proto = onnx.load(str(qdq_path))
    sites = _sites(proto)
    if not sites:
        return BiasCorrection(0, int(len(windows)), 0.0)
    fp32 = onnx.load(str(fp32_path))
    known = {o for n in fp32.graph.node for o in n.output}
    missing = [s.output for s in sites if s.output not in known]
    if missing:
        raise EdgeposeError(f"{fp32_path.name} is not the graph this int8 model was quantized from: it has no tensor "
                            f"{missing[0]!r}", qdq_path)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    float_batches = tensor_batches(fp32, [s.output for s in sites], windows, chunk)
    int8_batches = tensor_batches(proto, [s.tap for s in sites], windows, chunk)
    for (ref, _), (got, _) in zip(float_batches, int8_batches):
        for s in sites:
            diff = ref[s.output].astype(np.float64) - got[s.tap]
            axes = (0, *range(2, diff.ndim))
            sums[s.output] = sums.get(s.output, 0.0) + diff.sum(axis=axes)
            counts[s.output] = counts.get(s.output, 0) + diff.size // diff.shape[1]
    inits = {i.name: i for i in proto.graph.initializer}
    largest = 0.0
    for s in sites:
        delta = sums[s.output] / counts[s.output]
        largest = max(largest, float(np.max(np.abs(delta))))
        held = inits[s.bias]
        bias = numpy_helper.to_array(held)
        if s.bias_scale is None:
            new = (bias.astype(np.float64) + delta).astype(bias.dtype)
        else:
            steps = np.round(delta / numpy_helper.to_array(inits[s.bias_scale]).astype(np.float64))
            new = np.clip(bias.astype(np.int64) + steps.astype(np.int64), *_INT32).astype(bias.dtype)
        held.CopyFrom(numpy_helper.from_array(new, held.name))
    with atomic_path(qdq_path) as tmp:
        onnx.save(proto, str(tmp))
    return BiasCorrection(len(sites), int(len(windows)), largest)
