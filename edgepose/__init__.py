"""edgepose: take a WiFi-CSI human-pose network from training to a measured, deployable edge artifact.

``import edgepose as ep`` gives the whole chain as plain functions with typed results
(:mod:`edgepose.api`). Names import lazily: plain ``import edgepose`` loads no torch, onnx or
onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

#: public name → module that defines it
_EXPORTS = {
    "Artifact": "edgepose.api", "BenchResult": "edgepose.api", "Checkpoint": "edgepose.api", "Scores": "edgepose.api",
    "bench": "edgepose.api", "doctor": "edgepose.api", "evaluate": "edgepose.api", "export": "edgepose.api",
    "list_models": "edgepose.api", "list_pretrained": "edgepose.api", "load_checkpoint": "edgepose.api",
    "load_dataset": "edgepose.api", "package": "edgepose.api", "report": "edgepose.api", "run": "edgepose.api",
    "synthesize": "edgepose.api", "train": "edgepose.api", "verify": "edgepose.api",
    "EdgeposeError": "edgepose.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:  # pragma: no cover
    from .api import (Artifact, BenchResult, Checkpoint, Scores, bench, doctor, evaluate, export, list_models,
                      list_pretrained, load_checkpoint, load_dataset, package, report, run, synthesize, train, verify)
    from .errors import EdgeposeError


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edgepose' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
