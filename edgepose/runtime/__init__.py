"""The torch-free part of edgepose: bundles, the predictor, ONNX Runtime sessions and CPU facts.

Nothing under ``edgepose.runtime`` may import torch, onnx, click, matplotlib or scipy: an edge box
runs it with only numpy and onnxruntime installed (``tests/test_runtime.py`` checks this in a
fresh interpreter). The main names are loaded on first use, so ``edgepose.runtime.cpu`` stays
cheap for export and bench::

    from edgepose.runtime import Predictor
    pred = Predictor.load("model.edgepose")
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Predictor": "predictor", "Prediction": "predictor", "StreamPose": "predictor",
    "Bundle": "bundle", "Limits": "bundle", "extract": "bundle", "file_sha256": "bundle",
    "verify": "verify", "VerifyReport": "verify",
    "BundleError": "errors", "InputError": "errors",
    "CORRUPT_ABS_LIMIT": "window",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
