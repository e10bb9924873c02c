"""The JSON card written beside every exported artifact (modelled on weight-metadata tables)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from edgepose.version import tool_versions as _versions
from edgepose.io import read_json, sha256_file, write_json

ARTIFACT_FORMAT = "edgepose-artifact"
ARTIFACT_VERSION = 1


def tool_versions() -> dict:
    """Library versions recorded in every artifact card."""
    return _versions("torch", "onnx", "onnxruntime", "numpy")


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
    """The card beside ``artifact``, or ``None`` when it has none."""
    path = card_path(artifact)
    return read_json(path) if path.is_file() else None


def parent_card(cards: Iterable[dict]) -> dict:
    """The checkpoint card the artifacts with these cards were exported from.

    The first parent checkpoint whose card still reads wins; else a stub carrying the first
    recorded dataset (and split) fingerprints; else ``{}``.
    """
    from edgepose.errors import EdgeposeError
    from edgepose.training.checkpoint import read_card

    cards = list(cards)
    for card in cards:
        ckpt = (card.get("parent") or {}).get("checkpoint")
        if ckpt and Path(ckpt).with_suffix(".json").is_file():
            try:
                return read_card(ckpt)
            except EdgeposeError:
                continue
    for card in cards:
        parent = card.get("parent") or {}
        if parent.get("dataset_fingerprint"):
            return {"dataset": {"fingerprint": parent["dataset_fingerprint"]},
                    "split": {"fingerprint": parent.get("split_fingerprint")}}
    return {}
