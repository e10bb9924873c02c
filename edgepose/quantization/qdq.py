"""Insert QuantizeLinear/DequantizeLinear into an fp32 ONNX graph with given (frozen) parameters.

Used by QAT: the fake-quant simulation and this graph share one set of scales, zero points and
quantized tensors, so what was trained is what ships. Conventions follow ONNX Runtime's QDQ
format (what its QDQ→QLinearConv fusion expects): per-tensor activations, per-channel int8
weights on axis 0, int32 bias with scale ``s_in·s_w`` and zero point 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


@dataclass
class ConvQuant:
    """Quantization of one Conv node."""

    input_scale: float
    input_zero_point: int
    weight_scales: np.ndarray            # [C_out]
    weight_qmax: int
    output_scale: float | None = None    # None: output stays float (TensorRT layout)
    output_zero_point: int = 0
    quantize_bias: bool = True
    activation_dtype: int = TensorProto.UINT8


def _np_act(dtype: int):
    return np.uint8 if dtype == TensorProto.UINT8 else np.int8


def insert_qdq(proto: onnx.ModelProto, plan: dict[str, ConvQuant]) -> onnx.ModelProto:
    """A copy of ``proto`` where every Conv named in ``plan`` reads and writes int8 through Q/DQ pairs."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    new_nodes: list[onnx.NodeProto] = []
    quantized_tensors: dict[str, str] = {}  # fp32 tensor → its dequantized twin
    renames: dict[str, str] = {}            # conv output → dequantized output (for consumers)

    def const(name: str, array: np.ndarray) -> str:
        g.initializer.append(numpy_helper.from_array(array, name))
        return name

    def qdq_activation(tensor: str, scale: float, zp: int, dtype: int) -> tuple[list, str]:
        if tensor in quantized_tensors:
            return [], quantized_tensors[tensor]
        s = const(f"{tensor}_qscale", np.array(scale, dtype=np.float32))
        z = const(f"{tensor}_qzp", np.array(zp, dtype=_np_act(dtype)))
        q_out, dq_out = f"{tensor}_q", f"{tensor}_dq"
        nodes = [helper.make_node("QuantizeLinear", [tensor, s, z], [q_out], name=f"{tensor}_QuantizeLinear"),
                 helper.make_node("DequantizeLinear", [q_out, s, z], [dq_out], name=f"{tensor}_DequantizeLinear")]
        quantized_tensors[tensor] = dq_out
        return nodes, dq_out

    for node in g.node:
        # consumers of a quantized conv output read its dequantized twin
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
        spec = plan.get(node.name)
        if node.op_type != "Conv" or spec is None:
            new_nodes.append(node)
            continue
        pre, x_dq = qdq_activation(node.input[0], spec.input_scale, spec.input_zero_point, spec.activation_dtype)
        new_nodes += pre
        w_name = node.input[1]
        w = numpy_helper.to_array(inits[w_name]).astype(np.float32)
        s_w = spec.weight_scales.astype(np.float32)
        shape = (-1,) + (1,) * (w.ndim - 1)
        w_q = np.clip(np.round(w / s_w.reshape(shape)), -spec.weight_qmax, spec.weight_qmax).astype(np.int8)
        wq = const(f"{w_name}_int8", w_q)
        ws = const(f"{w_name}_scale", s_w)
        wz = const(f"{w_name}_zp", np.zeros(len(s_w), dtype=np.int8))
        w_dq = f"{w_name}_dq"
        new_nodes.append(helper.make_node("DequantizeLinear", [wq, ws, wz], [w_dq], axis=0, name=f"{w_name}_DequantizeLinear"))
        inputs = [x_dq, w_dq]
        if len(node.input) > 2 and node.input[2]:
            b_name = node.input[2]
            b = numpy_helper.to_array(inits[b_name]).astype(np.float32)
            if spec.quantize_bias:
                s_b = (spec.input_scale * s_w).astype(np.float32)
                b_q = np.round(b / s_b).astype(np.int32)
                bq, bs = const(f"{b_name}_int32", b_q), const(f"{b_name}_scale", s_b)
                bz = const(f"{b_name}_zp", np.zeros(len(s_b), dtype=np.int32))
                b_dq = f"{b_name}_dq"
                new_nodes.append(helper.make_node("DequantizeLinear", [bq, bs, bz], [b_dq], axis=0,
                                                  name=f"{b_name}_DequantizeLinear"))
                inputs.append(b_dq)
            else:
                inputs.append(b_name)
        conv = helper.make_node("Conv", inputs, list(node.output), name=node.name)
        conv.attribute.extend(node.attribute)
        new_nodes.append(conv)
        if spec.output_scale is not None:
            post, y_dq = qdq_activation(node.output[0], spec.output_scale, spec.output_zero_point, spec.activation_dtype)
            new_nodes += post
            renames[node.output[0]] = y_dq
    # graph outputs produced by a quantized conv keep their names: never the case here, but be safe
    for out in g.output:
        if out.name in renames:
            raise ValueError(f"graph output {out.name} is a quantized conv output")
    del g.node[:]
    g.node.extend(new_nodes)
    used = {i for n in g.node for i in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    onnx.checker.check_model(model)
    return model


def read_activation_qparams(qdq: onnx.ModelProto) -> dict[str, tuple[float, int]]:
    """Tensor name → (scale, zero point) of every activation QuantizeLinear in a QDQ model."""
    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    out = {}
    for node in qdq.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in inits:
            scale = float(np.asarray(inits[node.input[1]]).reshape(-1)[0])
            zp = int(np.asarray(inits[node.input[2]]).reshape(-1)[0]) if len(node.input) > 2 else 0
            out[node.input[0]] = (scale, zp)
    return out


def reads_int8(node: onnx.NodeProto, dequantized: set[str]) -> bool:
    """Whether a QDQ ``Conv``/``MatMul``/``Gemm`` runs in int8 on ONNX Runtime: its QDQ fusion makes
    an integer kernel only when both the data input and the weight (or second operand) are
    dequantized; a float-weight conv that reads a dequantized tensor at the edge of an int8
    region runs in fp32. ``dequantized``: the output names of the graph's DequantizeLinear nodes."""
    return len(node.input) >= 2 and node.input[0] in dequantized and node.input[1] in dequantized


def dequantized_name(proto: onnx.ModelProto, tensor: str) -> str:
    """The output of the DequantizeLinear that re-reads ``tensor`` after a QuantizeLinear, if any, else ``tensor``:
    in a QDQ graph, the name under which downstream nodes read a quantized tensor."""
    q_out = next((n.output[0] for n in proto.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == tensor),
                 None)
    if q_out is None:
        return tensor
    return next((n.output[0] for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == q_out),
                tensor)
