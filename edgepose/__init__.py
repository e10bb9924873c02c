"""edgepose: take a WiFi-CSI human-pose network from training to a measured, deployable edge artifact.

``import edgepose as ep`` gives the whole chain as plain functions (verbs) with typed results:
``ep.synthesize``, ``ep.train``, ``ep.evaluate``, ``ep.export``, ``ep.analyze``, ``ep.bench``,
``ep.report``, ``ep.run``, ``ep.package``, ``ep.verify``, ``ep.doctor`` (:mod:`edgepose.api`);
the packages behind them are nouns (:mod:`edgepose.training`, :mod:`edgepose.quantization`,
:mod:`edgepose.exporting`, :mod:`edgepose.benchmarking`, :mod:`edgepose.reporting`, …), so no
function shares a name with a module. Names resolve lazily: ``import edgepose`` and reaching
``ep.export`` load no torch, onnx or onnxruntime until a function is called.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edgepose.version import __version__

#: public name → module that defines it
_EXPORTS = {
    **{name: "edgepose.api" for name in (
        "analyze", "bench", "doctor", "evaluate", "export", "list_models", "list_pretrained", "load_checkpoint",
        "load_dataset", "package", "report", "run", "synthesize", "train", "verify")},
    **{name: "edgepose.results" for name in ("Artifact", "BenchResult", "Checkpoint", "Scores")},
    "EdgeposeError": "edgepose.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:  # pragma: no cover
    from edgepose.api import (analyze, bench, doctor, evaluate, export, list_models, list_pretrained, load_checkpoint,
                              load_dataset, package, report, run, synthesize, train, verify)
    from edgepose.errors import EdgeposeError
    from edgepose.results import Artifact, BenchResult, Checkpoint, Scores


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edgepose' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
