"""edgepose: take a WiFi-CSI human-pose network from training to a measured, deployable edge artifact.

``import edgepose as ep`` gives the whole chain as plain functions with typed results
(:mod:`edgepose.api`). ``ep.train``, ``ep.evaluate``, ``ep.export``, ``ep.analyze``, ``ep.bench``, ``ep.report`` and
``ep.doctor`` are also modules of the package; calling them calls the API function of the same name. Names import lazily: plain ``import edgepose`` loads no torch, onnx or
onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

#: public name → module that defines it
_EXPORTS = {
    "Artifact": "edgepose.api", "BenchResult": "edgepose.api", "Checkpoint": "edgepose.api", "Scores": "edgepose.api",
    "list_models": "edgepose.api", "list_pretrained": "edgepose.api", "load_checkpoint": "edgepose.api",
    "load_dataset": "edgepose.api", "package": "edgepose.api", "run": "edgepose.api",
    "synthesize": "edgepose.api", "verify": "edgepose.api",
    "EdgeposeError": "edgepose.errors",
}

#: subpackages that are also API functions: the module itself is callable (see edgepose._callable)
_CALLABLE_MODULES = ("analyze", "bench", "doctor", "evaluate", "export", "report", "train")

__all__ = ["__version__", *sorted([*_EXPORTS, *_CALLABLE_MODULES])]

if TYPE_CHECKING:  # pragma: no cover
    from .api import (Artifact, BenchResult, Checkpoint, Scores, analyze, bench, doctor, evaluate, export, list_models,
                      list_pretrained, load_checkpoint, load_dataset, package, report, run, synthesize, train, verify)
    from .errors import EdgeposeError


def __getattr__(name: str) -> Any:
    if name in _CALLABLE_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edgepose' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_CALLABLE_MODULES))
