"""QAT on the shipped graph itself: a QDQ ONNX graph executed in torch with fake-quant ops.

The conv-level simulation of :mod:`edgepose.quantization.qat` wraps torch modules and can only mirror
graphs whose Q/DQ pairs sit around convolutions. Recipes that quantize every op (``global``: SiLU,
residual adds, attention matmuls and softmax, BatchNorm parameters, the output de-normalisation
constants) put Q/DQ pairs on tensors that have no torch module. This module removes the mapping
problem by construction: it interprets the PTQ QDQ graph node by node with torch ops, so the
model that is fine-tuned is the graph that ships, tensor for tensor.

* An activation ``QuantizeLinear`` → ``DequantizeLinear`` pair becomes one
  ``torch.fake_quantize_per_tensor_affine`` with the pair's scale and zero point, frozen (the PTQ
  calibration); gradients pass straight through inside the range and stop outside it.
* A ``DequantizeLinear`` of a quantized initializer becomes a fake-quant of the **float**
  parameter (read from the fp32 graph, trainable when it is a parameter of the torch model):
  int8 weights with a scale that follows the weights (``max|w| / qmax``, per channel where the
  graph is per channel, exactly ONNX Runtime's symmetric rule, checked on the PTQ values at
  build time), int32 biases rounded on the grid ``input scale × weight scale`` of their
  consumer, anything else on its frozen PTQ grid.
* Every other node runs as the equivalent torch op; an op outside the supported set is refused
  by name when the simulation is built, not in the middle of training.

:meth:`GraphQAT.to_qdq` writes the fine-tuned parameters back into a copy of the PTQ graph (the
quantized initializers, their scales and the float ones), leaving placement and activation
scales untouched, so the shipped graph is the simulated one.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from edgepose.errors import EdgeposeError
from edgepose.quantization.qat import _ste_round


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _int_list(t: torch.Tensor) -> list[int]:
    return [int(v) for v in t.reshape(-1).tolist()]


def _conv(ins: list, a: dict) -> torch.Tensor:
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    nd = w.ndim - 2
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise EdgeposeError("QAT on the graph: Conv with auto_pad is not supported")
    pads = list(a.get("pads", [0] * (2 * nd)))
    begin, end = pads[:nd], pads[nd:]
    stride = a.get("strides", [1] * nd)
    dil = a.get("dilations", [1] * nd)
    groups = a.get("group", 1)
    if begin != end:  # asymmetric padding: pad explicitly (F.pad takes the last dim first)
        spec = []
        for i in reversed(range(nd)):
            spec += [begin[i], end[i]]
        x, begin = F.pad(x, spec), [0] * nd
    fn = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
    return fn(x, w, b, stride=stride, padding=begin, dilation=dil, groups=groups)


def _reshape(ins: list, a: dict) -> torch.Tensor:
    x, shape = ins[0], _int_list(ins[1])
    if not a.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _gather(ins: list, a: dict) -> torch.Tensor:
    x, idx = ins[0], ins[1].long()
    axis = a.get("axis", 0) % x.ndim
    idx = torch.where(idx < 0, idx + x.shape[axis], idx)
    out = torch.index_select(x, axis, idx.reshape(-1))
    return out.reshape(*x.shape[:axis], *idx.shape, *x.shape[axis + 1:])


def _unsqueeze(ins: list, a: dict) -> torch.Tensor:
    x = ins[0]
    axes = sorted(ax % (x.ndim + len(_int_list(ins[1]))) for ax in _int_list(ins[1]))
    for ax in axes:
        x = x.unsqueeze(ax)
    return x


def _squeeze(ins: list, a: dict) -> torch.Tensor:
    x = ins[0]
    if len(ins) < 2:
        return x.squeeze()
    for ax in sorted((ax % x.ndim for ax in _int_list(ins[1])), reverse=True):
        x = x.squeeze(ax)
    return x


def _batchnorm(ins: list, a: dict) -> torch.Tensor:
    x, scale, bias, mean, var = ins
    return F.batch_norm(x, mean, var, scale, bias, training=False, eps=a.get("epsilon", 1e-5))


def _average_pool(ins: list, a: dict) -> torch.Tensor:
    x = ins[0]
    k = list(a["kernel_shape"])
    nd = len(k)
    pads = list(a.get("pads", [0] * (2 * nd)))
    if pads[:nd] != pads[nd:] or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise EdgeposeError("QAT on the graph: AveragePool with asymmetric or automatic padding is not supported")
    if any(d != 1 for d in a.get("dilations", [1] * nd)):
        raise EdgeposeError("QAT on the graph: AveragePool with dilations is not supported")
    fn = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[nd - 1]
    return fn(x, k, stride=a.get("strides", [1] * nd), padding=pads[:nd], ceil_mode=bool(a.get("ceil_mode", 0)),
              count_include_pad=bool(a.get("count_include_pad", 0)))


#: ONNX op type → torch implementation ``(inputs, attributes) -> output`` (one output each).
OPS: dict[str, Callable[[list, dict], torch.Tensor]] = {
    "Conv": _conv,
    "Add": lambda i, a: i[0] + i[1],
    "Sub": lambda i, a: i[0] - i[1],
    "Mul": lambda i, a: i[0] * i[1],
    "Div": lambda i, a: i[0] / i[1],
    "Sigmoid": lambda i, a: torch.sigmoid(i[0]),
    "Relu": lambda i, a: torch.relu(i[0]),
    "Tanh": lambda i, a: torch.tanh(i[0]),
    "MatMul": lambda i, a: torch.matmul(i[0], i[1]),
    "Softmax": lambda i, a: torch.softmax(i[0], dim=a.get("axis", -1)),
    "Transpose": lambda i, a: i[0].permute(*a["perm"]) if "perm" in a else i[0].permute(*reversed(range(i[0].ndim))),
    "Reshape": _reshape,
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "BatchNormalization": _batchnorm,
    "AveragePool": _average_pool,
    "Identity": lambda i, a: i[0],
}

_RANGES = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127)}


class _ParamQuant:
    """How one quantized initializer is re-derived from its float parameter."""

    def __init__(self, node: onnx.NodeProto, q: np.ndarray, scale: np.ndarray, zp: np.ndarray | None,
                 float_name: str, rule: str, qmax: int = 127, bias_scales: tuple[torch.Tensor, str] | None = None) -> None:
        self.out = node.output[0]
        self.q_name, self.scale_name = node.input[0], node.input[1]
        self.zp_name = node.input[2] if len(node.input) > 2 else None
        self.axis = _attrs(node).get("axis", 1) if scale.ndim else None
        self.dtype = q.dtype
        self.float_name = float_name
        self.rule = rule  # "weight" (max|w|/qmax), "bias" (s_in·s_w), "frozen"
        self.qmax = qmax
        self.bias_scales = bias_scales  # (consumer's input scale, its weight's DQ output)
        self.frozen_scale = torch.from_numpy(np.asarray(scale, np.float32).copy())
        self.zp = torch.from_numpy(np.asarray(zp if zp is not None else np.zeros_like(scale), np.int64).copy())


class GraphQAT(nn.Module):
    """A QDQ ONNX graph as a trainable torch module (see the module docstring).

    ``fake`` and ``inner`` are this module itself, so :func:`edgepose.quantization.qat.finetune` trains
    and snapshots it like the conv-level simulation.
    """

    simulation = "graph"

    def __init__(self, qdq: onnx.ModelProto, fp32: onnx.ModelProto, trainable: set[str]) -> None:
        super().__init__()
        self.proto = qdq
        graph = qdq.graph
        opset = next((o.version for o in qdq.opset_import if o.domain in ("", "ai.onnx")), 0)
        if opset < 13:  # Squeeze/Unsqueeze axes as inputs and Softmax over one axis need opset ≥ 13
            raise EdgeposeError(f"QAT on the graph needs an opset ≥ 13 graph; this one is opset {opset}")
        inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        floats = {t.name: numpy_helper.to_array(t) for t in fp32.graph.initializer}
        unsupported = sorted({n.op_type for n in graph.node} - set(OPS) - {"QuantizeLinear", "DequantizeLinear"})
        if unsupported:
            raise EdgeposeError(f"QAT on the graph: op type(s) {', '.join(unsupported)} not supported "
                                f"(supported: {', '.join(sorted(OPS))})")
        self.inputs = [i.name for i in graph.input if i.name not in inits]
        self.outputs = [o.name for o in graph.output]
        self.params = nn.ParameterDict()
        self._key = {}  # initializer name → ParameterDict / buffer key
        consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in graph.node:
            for i in n.input:
                consumers.setdefault(i, []).append(n)
        producer = {o: n for n in graph.node for o in n.output}
        self._fp32_by_output = {o: n for n in fp32.graph.node for o in n.output}
        self._consumers = consumers

        def keep_param(name: str, value: np.ndarray) -> None:
            if name in self._key:  # one float tensor quantized twice (ONNX Runtime renames the copies)
                return
            key = f"p{len(self._key)}"
            self._key[name] = key
            self.params[key] = nn.Parameter(torch.from_numpy(np.asarray(value, np.float32).copy()),
                                            requires_grad=name in trainable)

        self.param_quant: dict[str, _ParamQuant] = {}
        self.act_quant: dict[str, tuple[float, int, int, int]] = {}  # DQ output → (scale, zp, qmin, qmax)
        self._consts: dict[str, torch.Tensor] = {}
        self.steps: list[tuple[str, onnx.NodeProto, dict]] = []
        for n in graph.node:
            if n.op_type == "DequantizeLinear" and n.input[0] in inits:
                self._add_param_dq(n, inits, floats, producer, keep_param)
                continue
            if n.op_type == "QuantizeLinear":
                if n.input[1] not in inits or (len(n.input) > 2 and n.input[2] not in inits):
                    raise EdgeposeError(f"QAT on the graph: QuantizeLinear {n.name} has a computed scale")
                for c in consumers.get(n.output[0], []):
                    if c.op_type != "DequantizeLinear" or list(c.input[1:]) != list(n.input[1:]):
                        raise EdgeposeError(f"QAT on the graph: QuantizeLinear {n.name} does not feed a matching "
                                            "DequantizeLinear")
                    zp = inits[n.input[2]] if len(n.input) > 2 else np.zeros((), np.uint8)
                    if np.asarray(inits[n.input[1]]).ndim:
                        raise EdgeposeError(f"QAT on the graph: per-channel activation quantization at {n.name}")
                    qmin, qmax = _RANGES.get(zp.dtype, (None, None))
                    if qmin is None:
                        raise EdgeposeError(f"QAT on the graph: activation type {zp.dtype} at {n.name}")
                    self.act_quant[c.output[0]] = (float(inits[n.input[1]]), int(zp), qmin, qmax)
                    self.steps.append(("fq", c, {}))
                continue
            if n.op_type == "DequantizeLinear":
                continue  # the partner of a QuantizeLinear, run as its fake-quant above
            for i in n.input:
                if i and i in inits and i not in self._key and i not in self._consts:
                    if i in trainable and i in floats:
                        keep_param(i, floats[i])
                    else:
                        self._consts[i] = torch.from_numpy(np.asarray(inits[i]).copy())
            self.steps.append(("op", n, _attrs(n)))  # attributes held by value: the module deep-copies
        for name, t in list(self._consts.items()):
            key = f"c{len(self._key)}"
            self._key[name] = key
            self.register_buffer(key, t, persistent=False)
        self._consts.clear()
        for pq in self.param_quant.values():  # a bias grid needs a weight that is quantized from a parameter
            if pq.rule == "bias" and pq.bias_scales[1] not in self.param_quant:
                pq.rule, pq.bias_scales = "frozen", None
        self._q_input = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "QuantizeLinear"}

    @property
    def fake(self) -> "GraphQAT":
        """The fake-quant model (this module)."""
        return self

    @property
    def inner(self) -> "GraphQAT":
        """The module whose parameters are trained and snapshotted (this module)."""
        return self

    def _add_param_dq(self, n: onnx.NodeProto, inits: dict, floats: dict, producer: dict, keep_param) -> None:
        q, scale = inits[n.input[0]], np.asarray(inits[n.input[1]], np.float32)
        zp = inits[n.input[2]] if len(n.input) > 2 else None
        base = n.input[0].removesuffix("_quantized")
        if base not in floats:  # a renamed copy: find the float tensor the same input of the same node reads
            for c in self._consumers.get(n.output[0], []):
                orig = self._fp32_by_output.get(c.output[0])
                if orig is not None and orig.op_type == c.op_type:
                    k = list(c.input).index(n.output[0])
                    if k < len(orig.input) and orig.input[k] in floats:
                        base = orig.input[k]
                        break
        if base not in floats:
            raise EdgeposeError(f"QAT on the graph: no float value for quantized initializer {n.input[0]} "
                                "in the fp32 graph")
        p = np.asarray(floats[base], np.float32)
        rule, qmax, bias_scales = "frozen", 127, None
        if q.dtype == np.int8 and (zp is None or not np.any(zp)):
            axis = _attrs(n).get("axis", 1) if scale.ndim else None
            amax = (np.abs(p).max() if axis is None else
                    np.abs(np.moveaxis(p, axis, 0)).reshape(p.shape[axis], -1).max(1))
            for cand in (127, 63, 64):
                if np.allclose(amax / cand, scale, rtol=1e-5, atol=0):
                    rule, qmax = "weight", cand
                    break
        elif q.dtype == np.int32:
            consumer = next(iter(self._consumers.get(n.output[0], [])), None)
            if consumer is not None and consumer.op_type in ("Conv", "BatchNormalization", "Gemm"):
                srcs = [producer.get(consumer.input[k]) for k in (0, 1)]
                if all(s is not None and s.op_type == "DequantizeLinear" for s in srcs):
                    s_in, s_w = (np.asarray(inits[s.input[1]], np.float32) for s in srcs)
                    if np.allclose(s_in * s_w, scale, rtol=1e-5, atol=0):
                        rule, bias_scales = "bias", (torch.from_numpy(s_in.copy()), srcs[1].output[0])
        keep_param(base, p)
        self.param_quant[n.output[0]] = _ParamQuant(n, q, scale, zp, base, rule, qmax, bias_scales)

    # -- values ---------------------------------------------------------------------------------
    def _get(self, env: dict, name: str) -> torch.Tensor:
        if name in env:
            return env[name]
        key = self._key.get(name)
        if key is None:
            raise KeyError(name)
        return self.params[key] if key.startswith("p") else getattr(self, key)

    def param_scale(self, pq: _ParamQuant) -> torch.Tensor:
        """The current scale of a quantized initializer (weights follow their values)."""
        if pq.rule == "weight":
            w = self.params[self._key[pq.float_name]].detach()
            if pq.axis is None:
                amax = w.abs().max()
            else:
                amax = w.abs().movedim(pq.axis, 0).reshape(w.shape[pq.axis], -1).amax(1)
            return (amax / pq.qmax).clamp_min(1e-12)
        if pq.rule == "bias":
            s_w = self.param_scale(self.param_quant[pq.bias_scales[1]])
            return pq.bias_scales[0].to(s_w.device) * s_w
        return pq.frozen_scale.to(self.params[self._key[pq.float_name]].device)

    def _param_value(self, pq: _ParamQuant) -> torch.Tensor:
        p = self.params[self._key[pq.float_name]]
        s = self.param_scale(pq).to(p.device)
        if pq.dtype == np.int32:
            shape = [1] * p.ndim
            if s.ndim and p.ndim:
                shape[pq.axis if pq.axis is not None else 0] = -1
            s = s.reshape(shape) if s.ndim else s
            return _ste_round(p / s) * s
        qmin, qmax = _RANGES[np.dtype(pq.dtype)]
        zp = pq.zp.to(p.device)
        if pq.axis is None:
            return torch.fake_quantize_per_tensor_affine(p, float(s), int(zp), qmin, qmax)
        return torch.fake_quantize_per_channel_affine(p, s, zp.to(torch.int32), pq.axis % p.ndim, qmin, qmax)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env: dict[str, torch.Tensor] = {self.inputs[0]: x}
        cache: dict[str, torch.Tensor] = {}
        for kind, n, attrs in self.steps:
            if kind == "fq":
                s, zp, qmin, qmax = self.act_quant[n.output[0]]
                src = self._get(env, self._q_input[n.input[0]])  # the float tensor the QuantizeLinear reads
                env[n.output[0]] = torch.fake_quantize_per_tensor_affine(src, s, zp, qmin, qmax)
                continue
            ins = []
            for i in n.input:
                if not i:
                    continue
                if i in self.param_quant:
                    if i not in cache:
                        cache[i] = self._param_value(self.param_quant[i])
                    ins.append(cache[i])
                else:
                    ins.append(self._get(env, i))
            env[n.output[0]] = OPS[n.op_type](ins, attrs)
        return env[self.outputs[0]]

    # -- export ---------------------------------------------------------------------------------
    @torch.no_grad()
    def to_qdq(self) -> onnx.ModelProto:
        """A copy of the PTQ graph carrying the current parameters, quantized as simulated."""
        out = copy.deepcopy(self.proto)
        values: dict[str, np.ndarray] = {}
        for pq in self.param_quant.values():
            # the integers are read back off the simulated values, so the graph holds exactly them
            sim = self._param_value(pq).detach().cpu().double()
            s = self.param_scale(pq).detach().cpu().float()
            shape = [1] * sim.ndim
            if s.ndim and sim.ndim:
                shape[(pq.axis if pq.axis is not None else 0) % sim.ndim] = -1
            s_b = s.double().reshape(shape) if s.ndim else s.double()
            if pq.dtype == np.int32:
                q = torch.round(sim / s_b).clamp(-(2 ** 31), 2 ** 31 - 1).numpy().astype(np.int32)
            else:
                qmin, qmax = _RANGES[np.dtype(pq.dtype)]
                zp_b = pq.zp.double().reshape(shape) if pq.zp.ndim else pq.zp.double()
                q = torch.clamp(torch.round(sim / s_b) + zp_b, qmin, qmax).numpy().astype(pq.dtype)
            values[pq.q_name] = q
            values[pq.scale_name] = s.numpy().astype(np.float32).reshape(np.shape(pq.frozen_scale))
        for name, key in self._key.items():  # float parameters the graph reads unquantized (written where present)
            if key.startswith("p"):
                values.setdefault(name, self.params[key].detach().cpu().numpy().astype(np.float32))
        for i, t in enumerate(out.graph.initializer):
            if t.name in values:
                new = numpy_helper.from_array(values[t.name], t.name)
                out.graph.initializer[i].CopyFrom(new)
        return out

    def count(self) -> dict:
        """How many fake-quant points the simulation has, by kind."""
        rules = [pq.rule for pq in self.param_quant.values()]
        return {"activations": len(self.act_quant), "weights": rules.count("weight"),
                "biases": rules.count("bias"), "frozen_grid": rules.count("frozen"),
                "trainable_tensors": sum(p.requires_grad for p in self.params.values())}


def build_graph_qat(qdq: onnx.ModelProto, fp32: onnx.ModelProto, trainable: set[str]) -> GraphQAT:
    """The trainable simulation of the PTQ graph ``qdq``; ``fp32`` is the graph it was quantized from.

    ``trainable``: initializer names that are parameters of the torch model (the others, such as
    BatchNorm running statistics or shape constants, stay fixed).
    """
    return GraphQAT(qdq, fp32, trainable)


__all__ = ["GraphQAT", "OPS", "build_graph_qat"]
