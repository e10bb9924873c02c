"""Export layer: fp32/fp16 ONNX, int8 PTQ and QAT as QDQ ONNX, precision plans, TensorRT engines.

:func:`~edgepose.exporting.runner.export` runs one :class:`~edgepose.exporting.request.ExportRequest`
through an :class:`~edgepose.exporting.context.ExportContext`; the int8 machinery it uses lives
one layer down in :mod:`edgepose.quantization`. This package re-exports the public names.
"""

from __future__ import annotations

from edgepose.exporting.context import ExportContext, load_context
from edgepose.exporting.request import METHODS, OBJECTIVES, ExportRequest
from edgepose.exporting.runner import PRECISIONS, export
from edgepose.quantization.calibrators import CALIBRATORS
from edgepose.quantization.recipes import RECIPES, get_recipe
from edgepose.quantization.targets import TARGETS, get_target

__all__ = ["CALIBRATORS", "METHODS", "OBJECTIVES", "PRECISIONS", "RECIPES", "TARGETS", "ExportContext", "ExportRequest",
           "export", "get_recipe", "get_target", "load_context"]
