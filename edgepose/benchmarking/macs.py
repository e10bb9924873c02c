"""Multiply-accumulates of one window, counted from an ONNX graph.

Only the ops that carry the arithmetic are counted — convolutions and matrix products in their
float, QDQ and integer forms. Element-wise ops (SiLU, adds, softmax, Q/DQ themselves) are left out:
they are memory-bound and have no MAC peak to compare with. Shapes come from ONNX shape inference
with the batch dimension fixed to 1, so the count is per window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from edgepose.errors import EdgeposeError
from edgepose.quantization.qdq import reads_int8

Shapes = dict[str, list[int]]


def _conv(node, shapes: Shapes, w_index: int = 1, y_index: int = 0) -> int:
    """Output elements × (input channels per group × kernel size): the weight holds both factors."""
    w = shapes[node.input[w_index]]
    y = shapes[node.output[y_index]]
    return int(np.prod(y, dtype=np.int64)) * int(np.prod(w[1:], dtype=np.int64))


def _conv_transpose(node, shapes: Shapes) -> int:
    x, w = shapes[node.input[0]], shapes[node.input[1]]
    return int(np.prod(x, dtype=np.int64)) * int(np.prod(w[1:], dtype=np.int64))


def _matmul(node, shapes: Shapes, a_index: int = 0) -> int:
    """Output elements × the reduced dimension (last of ``A``)."""
    a = shapes[node.input[a_index]]
    y = shapes[node.output[0]]
    return int(np.prod(y, dtype=np.int64)) * int(a[-1])


def _gemm(node, shapes: Shapes) -> int:
    a = shapes[node.input[0]]
    trans_a = next((att.i for att in node.attribute if att.name == "transA"), 0)
    k = a[0] if trans_a else a[-1]
    return int(np.prod(shapes[node.output[0]], dtype=np.int64)) * int(k)


#: ops whose arithmetic is integer whatever feeds them
INTEGER_OPS = frozenset({"ConvInteger", "QLinearConv", "MatMulInteger", "QLinearMatMul"})

#: op type → MACs of one node, given every tensor's shape (registry, not an if-chain).
COUNTERS: dict[str, Callable] = {
    "Conv": _conv,
    "ConvInteger": _conv,
    "QLinearConv": lambda n, s: _conv(n, s, w_index=3),
    "ConvTranspose": _conv_transpose,
    "MatMul": _matmul,
    "MatMulInteger": _matmul,
    "QLinearMatMul": _matmul,
    "FusedMatMul": _matmul,
    "Gemm": _gemm,
}


def _shapes(model) -> Shapes:
    """Static shape of every tensor (inputs, initializers, inferred intermediates) at batch 1."""
    import onnx
    from onnx import shape_inference

    model = onnx.ModelProto.FromString(model.SerializeToString())
    del model.graph.value_info[:]  # exporters' stale annotations (fp16 casts) confuse inference
    for inp in model.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if len(dims) and not dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_value = 1
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    shapes: Shapes = {i.name: list(i.dims) for i in inferred.graph.initializer}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = [d.dim_value for d in dims]
    return shapes


def count_macs(path: Path) -> dict:
    """MACs of one window through the ONNX graph at ``path``.

    Returns ``{"per_window": int, "int8_per_window": int, "by_op": {op: MACs}, "nodes": int}``;
    ``int8_per_window`` counts the MACs that run in int8: integer ops (``QLinearConv``, …) and, in
    a QDQ graph, convolutions and matmuls whose two operands both come from a
    ``DequantizeLinear`` (:func:`reads_int8`).
    Raises :class:`EdgeposeError` naming the file when a counted node's shape cannot be inferred.
    """
    import onnx

    try:
        model = onnx.load(str(path))
        shapes = _shapes(model)
    except Exception as exc:  # a graph onnx cannot read or infer is a bad artifact, not a crash
        raise EdgeposeError(f"cannot infer shapes to count MACs ({type(exc).__name__}: {exc})", path) from None
    by_op: dict[str, int] = {}
    nodes = int8 = 0
    dequantized = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    for node in model.graph.node:
        counter = COUNTERS.get(node.op_type)
        if counter is None:
            continue
        try:
            macs = counter(node, shapes)
        except KeyError as exc:
            raise EdgeposeError(f"shape of {exc} unknown: cannot count the MACs of {node.op_type} node "
                                f"{node.name!r}", path) from None
        by_op[node.op_type] = by_op.get(node.op_type, 0) + macs
        nodes += 1
        if node.op_type in INTEGER_OPS or reads_int8(node, dequantized):
            int8 += macs
    return {"per_window": int(sum(by_op.values())), "int8_per_window": int(int8), "by_op": by_op, "nodes": nodes}
