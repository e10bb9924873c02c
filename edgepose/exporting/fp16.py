"""fp16 ONNX via ONNX Runtime's float16 converter, with float32 I/O and an op block list."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import onnx

#: Ops kept in float32: the softmax and its BatchNorm glue overflow or lose precision in fp16,
#: and the final affine map to pixel/1000 units wants full precision.
DEFAULT_BLOCK_LIST = ("Softmax", "BatchNormalization", "Sub", "AveragePool")


def convert_fp16(fp32_path: Path, out_path: Path, keep_io_types: bool = True,
                 block_list: tuple[str, ...] = DEFAULT_BLOCK_LIST) -> dict:
    """Write an fp16 copy of an fp32 ONNX model; returns the parameters used."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(fp32_path))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        fp16 = convert_float_to_float16(model, keep_io_types=keep_io_types, op_block_list=list(block_list))
    topological_sort(fp16.graph)  # the converter appends its I/O casts after their consumers
    onnx.checker.check_model(fp16)
    onnx.save(fp16, str(out_path))
    return {"keep_io_types": keep_io_types, "op_block_list": list(block_list)}


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` in place so every node follows the producers of its inputs."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError("graph has a cycle or a dangling input")
        for n in ready:
            ordered.append(n)
            available.update(n.output)
        pending = [n for n in pending if n not in ready]
    del graph.node[:]
    graph.node.extend(ordered)
