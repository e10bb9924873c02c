"""Export layer: fp32/fp16 ONNX, int8 PTQ and QAT as QDQ ONNX, TensorRT engines.

The orchestration lives in :mod:`edgepose.export.orchestrate`; this package only re-exports the
public names.
"""

from __future__ import annotations

from .orchestrate import METHODS, PRECISIONS, ExportRequest, export
from .plan import RECIPES, get_recipe
from .calibrators import CALIBRATORS
from .targets import TARGETS, get_target

__all__ = ["CALIBRATORS", "METHODS", "PRECISIONS", "RECIPES", "TARGETS", "ExportRequest", "export", "get_recipe",
           "get_target"]


from .._callable import make_callable as _make_callable  # noqa: E402

_make_callable(__name__)  # ep.export(...) calls edgepose.api.export
