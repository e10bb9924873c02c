"""Empirical bias correction of a QDQ graph: give every int8 convolution's output the fp32 mean again.

Rounding and clipping the inputs, weights and output of a convolution shift the *mean* of what
the next layer reads, per output channel, and the shifts add up through the network. For every
convolution that runs int8 (data input and weight both dequantized), the calibration windows give

    δ_c = mean over windows and positions of (fp32 output_c − int8 output_c),

and ``δ_c`` is added to the convolution's bias (in the bias's own int32 steps when the bias is
quantized). The convolutions are corrected one at a time in graph order, each measured with every
earlier correction in place: a layer's measured shift includes what the layers before it pass on,
so correcting all of them from one pass roughly counts that shift twice; on the shipped quarter and
tiny models that one-pass form lost several times what the plain graph lost
(``benchmarks/results/bias-correction-one-pass/``). The int8 output is read where the next layer
reads it: after the convolution's QuantizeLinear/DequantizeLinear pair when it has one, so the
correction also covers the output's requantization. This is the data-driven variant of the bias correction of Nagel et al., *Data-Free
Quantization Through Weight Equalization and Bias Correction* (ICCV 2019). The cost is one
pass of the int8 graph over the calibration windows per corrected convolution.

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
from edgepose.quantization.qdq import dequantized_name, reads_int8

__all__ = ["BiasCorrection", "correct_biases"]


@dataclass(frozen=True)
class _Site:
    """One correctable convolution: its fp32 output name, where int8 reads it, and its bias initializer."""

    output: str
    tap: str
    bias: str
    bias_scale: str | None  # the bias DequantizeLinear's scale initializer; None for a float bias


@dataclass(frozen=True)
class BiasCorrection:
    """What :func:`correct_biases` changed: convolutions corrected (and int8 ones it could not correct: no bias
    of their own), windows used, the largest shift."""

    convs: int
    skipped: int
    windows: int
    max_shift: float  # largest |δ_c| added, in the convolution's output units

    def describe(self) -> dict:
        """The card's ``bias_correction`` entry."""
        return {"convs": self.convs, "skipped": self.skipped, "windows": self.windows, "max_shift": self.max_shift,
                "rule": "per output channel, mean of (fp32 − int8) conv output on the calibration windows added "
                        "to the bias, one convolution at a time in graph order with the earlier corrections in "
                        "place (the int8 output read after its requantization)"}


def _sites(proto: onnx.ModelProto) -> tuple[list[_Site], int]:
    """The int8 convolutions whose bias is an initializer of their own (int32 through a DequantizeLinear, or
    float), and how many int8 convolutions could not be corrected (no bias, or a bias shared with another node)."""
    inits = {i.name for i in proto.graph.initializer}
    producer = {o: n for n in proto.graph.node for o in n.output}
    readers: dict[str, int] = {}
    for node in proto.graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    dequantized = {n.output[0] for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    sites, skipped = [], 0
    for node in proto.graph.node:
        if node.op_type != "Conv" or not reads_int8(node, dequantized):
            continue  # a float convolution (even one reading a dequantized tensor) has nothing to correct
        bias = node.input[2] if len(node.input) > 2 else ""
        bias_dq = producer.get(bias)
        if bias_dq is not None and bias_dq.op_type == "DequantizeLinear" and bias_dq.input[0] in inits:
            owner, scale = bias_dq.input[0], bias_dq.input[1]
        elif bias in inits:
            owner, scale = bias, None
        else:
            skipped += 1
            continue
        if readers.get(bias, 0) > 1 or readers.get(owner, 0) > 1:
            skipped += 1
            continue
        sites.append(_Site(node.output[0], dequantized_name(proto, node.output[0]), owner, scale))
    return sites, skipped


def _channel_means(proto: onnx.ModelProto, names: list[str], windows: np.ndarray, chunk: int,
                   expose: list[str] | None = None) -> dict[str, np.ndarray]:
    """Per-channel (axis 1) means of the tensors ``names`` of ``proto`` over ``windows`` and every other axis.

    ``expose``: the tensors made graph outputs for it (default ``names``). The correction exposes every
    site's tensor in every pass: ONNX Runtime's full optimisation can fail to build a session in which a
    convolution's output is a graph output but its residual ``Add``'s other input is not.
    """
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for batch, _ in tensor_batches(proto, expose or names, windows, chunk):
        for name in names:
            v = batch[name].astype(np.float64)
            sums[name] = sums.get(name, 0.0) + v.sum(axis=(0, *range(2, v.ndim)))
            counts[name] = counts.get(name, 0) + v.size // v.shape[1]
    return {name: sums[name] / counts[name] for name in names}


def _add_to_bias(inits: dict[str, onnx.TensorProto], site: _Site, delta: np.ndarray) -> None:
    """Add ``delta`` (output units, per channel) to the site's bias: in its integer steps when it is quantized."""
    held = inits[site.bias]
    bias = numpy_helper.to_array(held)
    if site.bias_scale is None:
        new = (bias.astype(np.float64) + delta).astype(bias.dtype)
    else:
        steps = np.round(delta / numpy_helper.to_array(inits[site.bias_scale]).astype(np.float64))
        limits = np.iinfo(bias.dtype)
        new = np.clip(bias.astype(np.int64) + steps.astype(np.int64), limits.min, limits.max).astype(bias.dtype)
    held.CopyFrom(numpy_helper.from_array(new, held.name))


def correct_biases(fp32_path: Path, qdq_path: Path, windows: np.ndarray, chunk: int = 64) -> BiasCorrection:
    """Rewrite ``qdq_path`` in place (atomically) with every int8 convolution's bias corrected.

    ``fp32_path`` is the graph ``qdq_path`` was quantized from (its convolution outputs carry the
    same names); ``windows`` are the calibration windows. A graph with no int8 convolution is left
    untouched. ``chunk`` changes memory use only.
    """
    if len(windows) < 1:
        raise EdgeposeError("bias correction needs at least one calibration window", qdq_path)
    proto = onnx.load(str(qdq_path))
    sites, skipped = _sites(proto)
    if not sites:
        return BiasCorrection(0, skipped, int(len(windows)), 0.0)
    fp32 = onnx.load(str(fp32_path))
    made_by = {o: n.op_type for n in fp32.graph.node for o in n.output}
    foreign = [s.output for s in sites if made_by.get(s.output) != "Conv"]
    if foreign:
        # also where the quantizer fused an activation into the conv and renamed its output: δ would then be
        # measured after the activation but added before it
        raise EdgeposeError(f"{fp32_path.name} is not the graph this int8 model was quantized from: no convolution "
                            f"there writes {foreign[0]!r}", qdq_path)
    target = _channel_means(fp32, [s.output for s in sites], windows, chunk)
    inits = {i.name: i for i in proto.graph.initializer}
    largest = 0.0
    for s in sites:  # in graph (topological) order: each measured with every earlier correction in place
        (measured,) = _channel_means(proto, [s.tap], windows, chunk, expose=[t.tap for t in sites]).values()
        delta = target[s.output] - measured
        largest = max(largest, float(np.max(np.abs(delta))))
        _add_to_bias(inits, s, delta)
    with atomic_path(qdq_path) as tmp:
        onnx.save(proto, str(tmp))
    return BiasCorrection(len(sites), skipped, int(len(windows)), largest)
