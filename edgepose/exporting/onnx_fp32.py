"""Torch → ONNX fp32: BatchNorm folded, dynamic batch axis, checked and shape-inferred."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from edgepose.errors import EdgeposeError

from edgepose.runtime.session import INPUT_NAME  # noqa: E402  (one name for the graph input)
OUTPUT_NAME = "keypoints"
DEFAULT_OPSET = 18


def export_onnx(model: nn.Module, path: Path, window_shape: tuple[int, int], opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Export an eval-mode model to ``path`` with a dynamic batch axis; returns the checked proto.

    Uses the ``torch.export``-based exporter, which produces a static, shape-clean graph (no
    ``Shape``/``If`` chains around the dynamic batch) and constant-folds what it can.
    """
    model = model.eval()
    example = torch.zeros(2, *window_shape)
    batch = torch.export.Dim("batch", min=1, max=4096)
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(
                model, (example,), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},), optimize=True, verbose=False,
            )
        except Exception as exc:  # the exporter raises many types; surface one clear message
            raise EdgeposeError(f"ONNX export failed: {type(exc).__name__}: {str(exc)[:400]}") from None
    proto = program.model_proto
    proto.producer_name = "edgepose"
    proto = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return proto
