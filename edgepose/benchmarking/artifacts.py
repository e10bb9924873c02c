"""Discover benchmarkable artifacts in a folder: torch checkpoints, ONNX files, TensorRT plans."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgepose.io import read_json


@dataclass(frozen=True)
class ArtifactFile:
    """One file a backend can run (checkpoint, ONNX, TensorRT plan), with its card (the API's :class:`edgepose.results.Artifact` is the exported-artifact view)."""

    path: Path
    kind: str          # "torch" | "onnx" | "plan"
    precision: str
    method: str
    card: dict

    @property
    def label(self) -> str:
        if self.kind == "torch":
            return "fp32 torch checkpoint"
        extra = "" if self.method in ("export", "convert") else f" {self.method}"
        target = self.card.get("target")
        calib = self.card.get("recipe", {}).get("calibrator")
        bits = [self.precision + extra]
        if self.method == "ptq" and calib:
            bits.append(calib)
        recipe = self.card.get("recipe", {})
        if (recipe.get("range_search") or {}).get("changed"):
            bits.append("range-searched")
        if (recipe.get("bias_correction") or {}).get("shipped"):
            bits.append("bias-corrected")
        if recipe.get("chosen"):  # a recipe that chose (auto, checked): what it chose
            bits.append(f"{recipe.get('recipe')}:{recipe['chosen']}")
        elif recipe.get("recipe") not in (None, "safe"):
            bits.append(recipe["recipe"])
        if target and target != "ort-cpu":
            bits.append(target)
        if self.kind == "plan":
            bits.append("TensorRT plan")
        return " ".join(bits)

    @property
    def bytes(self) -> int:
        return self.path.stat().st_size


def discover(folder: Path) -> list[ArtifactFile]:
    """Every artifact with a readable card under ``folder`` (one level of sub-folders too)."""
    found: list[ArtifactFile] = []
    for path in sorted(list(folder.glob("*")) + list(folder.glob("*/*"))):
        if path.suffix == ".safetensors" and path.with_suffix(".json").is_file():
            card = read_json(path.with_suffix(".json"))
            if card.get("format") == "edgepose-checkpoint":
                found.append(ArtifactFile(path, "torch", "fp32", "checkpoint", card))
        elif path.suffix in (".onnx", ".plan") and path.with_name(path.name + ".json").is_file():
            card = read_json(path.with_name(path.name + ".json"))
            if card.get("format") == "edgepose-artifact":
                found.append(ArtifactFile(path, "onnx" if path.suffix == ".onnx" else "plan",
                                      card.get("precision", "?"), card.get("method", "?"), card))
    return found
