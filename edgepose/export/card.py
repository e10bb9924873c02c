"""The JSON card written beside every exported artifact (modelled on weight-metadata tables)."""

from __future__ import annotations

import platform
from pathlib import Path

from .. import __version__
from ..io import read_json, sha256_file, write_json

ARTIFACT_FORMAT = "edgepose-artifact"
ARTIFACT_VERSION = 1


def tool_versions() -> dict:
    import numpy
    import onnx
    import onnxruntime
    import torch

    return {"edgepose": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__, "python": platform.python_version()}


def strip_metadata(path: Path) -> None:
    """Drop exporter debug metadata (stack traces, scopes) from a shipped ONNX file, in place.

    The dynamo exporter records several hundred bytes per node; the work copies keep them
    (quantization plans read the module scopes), shipped artifacts do not need them.
    """
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del model.metadata_props[:]
    onnx.save(model, str(path))


def card_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".json")


def write_card(artifact: Path, card: dict) -> Path:
    """Strip debug metadata from an ONNX artifact and write ``<artifact>.json`` with its size and hash."""
    if artifact.suffix == ".onnx":
        strip_metadata(artifact)
    full = {"format": ARTIFACT_FORMAT, "version": ARTIFACT_VERSION, "file": artifact.name,
            "bytes": artifact.stat().st_size, "sha256": sha256_file(artifact), **card,
            "tool_versions": tool_versions()}
    path = card_path(artifact)
    write_json(path, full)
    return path


def read_artifact_card(artifact: Path) -> dict | None:
    path = card_path(artifact)
    return read_json(path) if path.is_file() else None
