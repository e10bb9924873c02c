"""Quantizable node groups of an exported graph: the units the sensitivity scan and the guard switch.

A *group* is a set of ONNX nodes that becomes int8 or stays float together. Groups are read from
the fp32 graph and the torch module scopes the exporter records on every node, so they exist for
any registered model and any input shape:

* every ``Conv`` is a group named by its module path (``tcn.0.body.1``), together with the
  activation that only it feeds (SiLU as ``Sigmoid`` + ``Mul``, or ReLU/Clip) when the target
  quantizes activations;
* every other node the target can run in int8 joins the group of the module that owns it — a
  residual block's ``Add`` + SiLU (``tcn.0``), an attention's matmuls, softmax and BatchNorms
  (``attn_w``), the pooling (``pool``); nodes outside any module form ``(top)``.

What a target can run in int8 is a registry (:data:`TARGET_OP_TYPES`): ONNX Runtime CPU has
QLinear kernels for convolutions, matmuls, SiLU's parts, residual adds, softmax and pooling;
TensorRT takes Q/DQ on the inputs of convolutions and matmuls.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

import onnx

from edgepose.errors import EdgeposeError
from edgepose.quantization.targets import Target

#: Ops that move data without arithmetic: quantized only as passengers of an int8 neighbour.
LAYOUT_OPS = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Gather", "Split", "Slice",
                        "Pad", "Concat"})

#: target name → op types it runs in int8 (Q/DQ around them is fused into integer kernels).
TARGET_OP_TYPES: dict[str, frozenset[str]] = {
    "ort-cpu": frozenset({"Conv", "MatMul", "Gemm", "Add", "Mul", "Sigmoid", "Softmax", "AveragePool",
                          "GlobalAveragePool", "MaxPool", "Relu", "Clip", "LeakyRelu", "BatchNormalization"}
                         | LAYOUT_OPS),
    "tensorrt": frozenset({"Conv", "MatMul", "Gemm"}),
}

_ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu"})


@dataclass
class Group:
    """One switchable unit: its name, a short kind, its node names and the tensor it hands on."""

    name: str
    kind: str
    nodes: list[str] = field(default_factory=list)
    output: str = ""
    ops: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "nodes": list(self.nodes), "output": self.output,
                "ops": list(self.ops)}


def target_op_types(target: Target | str) -> frozenset[str]:
    """The op types ``target`` runs in int8."""
    name = target if isinstance(target, str) else target.name
    if name not in TARGET_OP_TYPES:
        raise EdgeposeError(f"no int8 op list for target {name!r}; known: {', '.join(TARGET_OP_TYPES)}")
    return TARGET_OP_TYPES[name]


def _scopes(node: onnx.NodeProto) -> list[str]:
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            return list(ast.literal_eval(prop.value))
    return []


def _owner(scopes: list[str], leaves: set[str]) -> str:
    """The module that owns a node: its deepest scope, lifted to the parent when that is a leaf."""
    path = scopes[-2] if len(scopes) >= 2 else ""
    if path in leaves and "." in path:
        path = path.rsplit(".", 1)[0]
    return path or "(top)"


def _tail(conv: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]]) -> list[onnx.NodeProto]:
    """The activation that only this conv feeds: SiLU (Sigmoid + Mul) or a single ReLU-like op."""
    out = conv.output[0]
    users = consumers.get(out, [])
    kinds = sorted(n.op_type for n in users)
    if kinds == ["Mul", "Sigmoid"]:
        sig = next(n for n in users if n.op_type == "Sigmoid")
        mul = next(n for n in users if n.op_type == "Mul")
        if set(mul.input) == {out, sig.output[0]}:
            return [sig, mul]
    if len(users) == 1 and users[0].op_type in _ACTIVATIONS:
        return [users[0]]
    return []


def _kind(ops: list[str], is_head: bool) -> str:
    s = set(ops)
    if "Conv" in s:
        base = "head conv" if is_head else "conv"
        return base + ("+silu" if {"Sigmoid", "Mul"} <= s else "+act" if s & _ACTIVATIONS else "")
    if "MatMul" in s or "Softmax" in s:
        return "attention"
    if "Add" in s:
        return "residual" + ("+silu" if {"Sigmoid", "Mul"} <= s else "")
    if s & {"AveragePool", "GlobalAveragePool", "MaxPool"}:
        return "pool"
    return "elementwise" if s - LAYOUT_OPS else "layout"


def quant_groups(proto: onnx.ModelProto, target: Target | str, leaf_modules: set[str] | None = None) -> list[Group]:
    """The groups of an exported fp32 graph for ``target``, in graph order.

    ``leaf_modules``: module paths without children (from the torch model); nodes scoped to a
    leaf that is not a conv (a BatchNorm, a SiLU module) join the leaf's parent. Groups holding
    only layout ops are dropped (they have nothing to quantize on their own).
    """
    allowed = target_op_types(target)
    with_tails = (target if isinstance(target, str) else target.name) != "tensorrt"
    leaves = leaf_modules or set()
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    head = convs[-1].name if convs else None
    taken: set[str] = set()
    groups: dict[str, Group] = {}
    order: list[str] = []

    def add(key: str, node: onnx.NodeProto) -> None:
        if key not in groups:
            groups[key] = Group(key, "")
            order.append(key)
        g = groups[key]
        g.nodes.append(node.name)
        g.ops.append(node.op_type)
        g.output = node.output[0]
        taken.add(node.name)

    for node in proto.graph.node:
        if node.name in taken or node.op_type not in allowed:
            continue
        scopes = _scopes(node)
        if node.op_type == "Conv":
            if len(scopes) < 2:
                raise EdgeposeError(f"Conv node {node.name} carries no module scope; re-export with edgepose")
            key = scopes[-2]
            add(key, node)
            for t in _tail(node, consumers) if with_tails else []:
                if t.op_type in allowed:
                    add(key, t)
            continue
        add(_owner(scopes, leaves), node)
    out = []
    for key in order:
        g = groups[key]
        if set(g.ops) <= LAYOUT_OPS:
            continue
        g.kind = _kind(g.ops, head in g.nodes)
        out.append(g)
    if not out:
        raise EdgeposeError(f"the graph has no node that target {target if isinstance(target, str) else target.name} "
                            "runs in int8")
    return out


def leaf_module_paths(model) -> set[str]:
    """Paths of the modules of a torch model that have no children."""
    return {n for n, m in model.named_modules() if n and not any(True for _ in m.children())}


def nodes_of(groups: list[Group], names: set[str] | list[str]) -> list[str]:
    """Node names of the groups called ``names``."""
    wanted = set(names)
    unknown = wanted - {g.name for g in groups}
    if unknown:
        raise EdgeposeError(f"unknown quantization group(s): {', '.join(sorted(unknown))}")
    return [n for g in groups if g.name in wanted for n in g.nodes]


__all__ = ["Group", "LAYOUT_OPS", "TARGET_OP_TYPES", "leaf_module_paths", "nodes_of", "quant_groups",
           "target_op_types"]
