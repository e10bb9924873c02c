"""Which parts of a graph become int8: named recipes.

Three kinds, one registry (:data:`RECIPES`):

* **module recipes** (``safe``, ``convs``, ``global``) choose convolutions by torch module path.
  The same choice drives ONNX Runtime PTQ (as ``nodes_to_quantize``) and the QAT simulation (as
  the set of fake-quantized modules), so fake-quant and the shipped graph quantize the same tensors.
  ONNX nodes map back to module paths through the exporter's ``pkg.torch.onnx.name_scopes``.
* **group recipes** (``attention-float``) choose quantization groups
  (:mod:`edgepose.quantization.groups`) — a convolution with its activation, a residual add, an
  attention block — so that activations and adds between int8 convolutions are int8 too and ONNX
  Runtime's transpose optimizer can cancel the layout transposes between them. PTQ on ``ort-cpu``.
* **guarded group recipes** (``guarded``) start from a group recipe's groups and put the groups
  most sensitive on validation (the per-group scan) back to float until validation ΔPCK@20 is
  within the accuracy gate (:func:`edgepose.quantization.guard.guard_search`, by bisection).
* **verified recipes** (``checked``) try ``candidates`` in order and ship the first that passes the
  accuracy gate on validation *and* is not slower than fp32 end to end on the exporting machine
  (:mod:`edgepose.exporting.verified`); when none does, the fp32 graph, labelled as such.
* **planned recipes** (``auto``, the default) are verified recipes whose answer on ONNX Runtime CPU
  PTQ is the per-layer precision plan for ``plan`` (:mod:`edgepose.exporting.objective`: int8 only
  where this machine measures it faster, within the accuracy gate, fp32 when nothing pays); where a
  plan cannot be made (a graph with padded channels) they try ``candidates`` as ``checked`` does.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Callable

import onnx
from torch import nn

from edgepose.errors import EdgeposeError


@dataclass(frozen=True)
class Recipe:
    """A rule choosing which conv modules to quantize, and whether to quantize every other op too."""

    name: str
    description: str
    keep_float: Callable[[str], bool]
    quantize_all_ops: bool = False
    #: group recipes: the names of the groups that become int8, from all groups of the graph
    int8_groups: Callable[[list], list[str]] | None = None
    #: verified recipes: recipe names tried in order; ``fallback`` is used where they cannot be
    #: verified (QAT, the TensorRT layout)
    candidates: tuple[str, ...] = ()
    fallback: str | None = None
    #: group recipes: start the accuracy guard from ``int8_groups`` and restore groups until the gate holds
    guarded: bool = False
    #: planned recipes: the ``--objective`` whose per-layer plan is the answer on ONNX Runtime CPU PTQ
    plan: str | None = None
    #: planned recipes: how the plan judges its accuracy budget on validation (``point`` or ``lower``)
    guard_criterion: str | None = None
    #: planned recipes: how the plan's guard walks the restore order (``linear`` or ``bisect``)
    guard_strategy: str | None = None


def _fragile(path: str) -> bool:
    """Attention projections (feeding the softmax logits) and the regression head's last conv."""
    return ".qkv" in path or path.startswith("decoder.3")


def attention_modules(groups: list) -> set[str]:
    """Module paths of the attention blocks: the groups of kind ``attention`` (matmuls, softmax)."""
    return {g.name for g in groups if g.kind == "attention"}


def outside_attention(groups: list) -> list[str]:
    """Every group except those inside an attention block (its q/k/v projection, matmuls, softmax).

    Why: ONNX Runtime's ``QLinearMatMul`` cannot absorb a transpose, so an int8 attention keeps its
    ``Transpose`` nodes as real uint8 transposes, one small matrix at a time, which a second thread
    makes slower rather than faster (docs/int8-threads.md); its float ``FusedMatMul`` folds them away.
    """
    blocks = attention_modules(groups)
    return [g.name for g in groups if not any(g.name == b or g.name.startswith(b + ".") for b in blocks)]


RECIPES = {
    "safe": Recipe("safe", "int8 convolutions except the attention q/k/v projections and the final "
                   "regression conv; softmax, attention matmuls and their BatchNorms, SiLU, pooling stay float",
                   _fragile),
    "convs": Recipe("convs", "every convolution int8, the rest float", lambda p: False),
    "global": Recipe("global", "every op ONNX Runtime can quantize (the reference's global-qconfig approach)",
                     lambda p: False, quantize_all_ops=True),
    "attention-float": Recipe("attention-float", "every group int8 (convolutions with their SiLU, residual adds, "
                              "pooling) except the attention blocks, whose transposes only float matmuls absorb",
                              lambda p: False, int8_groups=outside_attention),
    "guarded": Recipe("guarded", "attention-float, then the groups that cost most accuracy alone on validation put "
                      "back to float until validation ΔPCK@20 is within the accuracy gate",
                      lambda p: False, int8_groups=outside_attention, guarded=True),
    "auto": Recipe("auto", "the per-layer latency plan (whole blocks flipped): int8 only where this machine measures "
                   "it faster at every batch, with the lower end of validation ΔPCK@20's 95 % interval within the "
                   "accuracy gate; otherwise the fp32 graph",
                   _fragile, candidates=("guarded", "safe"), fallback="safe", plan="latency", guard_criterion="lower",
                   guard_strategy="bisect"),
    "checked": Recipe("checked", "the first of guarded (attention-float when it is already within the gate), safe "
                      "that passes the accuracy gate on validation and is not slower than fp32 at every batch on "
                      "this machine; otherwise the fp32 graph",
                      _fragile, candidates=("guarded", "safe"), fallback="safe"),
}


def module_recipes() -> list[str]:
    """The recipes that choose convolutions by module path (neither groups nor candidates)."""
    return [n for n, r in RECIPES.items() if not r.candidates and r.int8_groups is None]


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise EdgeposeError(f"unknown int8 recipe {name!r}; choose from {', '.join(RECIPES)}")
    return RECIPES[name]


def conv_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Module path → conv for every Conv1d/Conv2d of a (folded) model."""
    return {n: m for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))}


def planned_modules(model: nn.Module, recipe: Recipe) -> list[str]:
    """Module paths of the convs the recipe quantizes."""
    return [n for n in conv_modules(model) if not recipe.keep_float(n)]


def node_module_path(node: onnx.NodeProto) -> str | None:
    """The torch module path an exported node came from (deepest module scope), if recorded."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = ast.literal_eval(prop.value)
            return scopes[-2] if len(scopes) >= 2 else None
    return None


def conv_nodes_by_module(proto: onnx.ModelProto) -> dict[str, str]:
    """Module path → ONNX node name for every Conv node."""
    out = {}
    for node in proto.graph.node:
        if node.op_type == "Conv":
            path = node_module_path(node)
            if path is None:
                raise EdgeposeError(f"Conv node {node.name} carries no module scope; re-export with edgepose")
            out[path] = node.name
    return out
