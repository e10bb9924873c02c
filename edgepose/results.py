"""Typed results of the API: :class:`Scores`, :class:`Checkpoint`, :class:`Artifact`, :class:`BenchResult`.

Light to import (no torch, onnx or onnxruntime at module level): the heavy readers load on use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgepose.errors import EdgeposeError

#: the locked PCK thresholds (fractions of the torso length)
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)

__all__ = ["THRESHOLDS", "Artifact", "BenchResult", "Checkpoint", "Scores"]


def _pck_table(m: dict) -> dict[float, float]:
    from edgepose.metrics import pck_at

    return {t: float(pck_at(m["pck"], t)) for t in THRESHOLDS}


@dataclass(frozen=True)
class Scores:
    """Locked accuracy of one model on one split: PCK@10..50 (fractions) and MPJPE (pixel/1000).

    ``pck``/``mpjpe`` are on the clean windows; ``full_*`` count corrupt windows zero-filled;
    ``mean_pose_*`` is the baseline that predicts the training mean pose for every window.
    """

    split: str
    pck: dict[float, float]
    mpjpe: float
    windows: int
    full_pck: dict[float, float] | None = None
    full_mpjpe: float | None = None
    mean_pose_pck: dict[float, float] | None = None
    mean_pose_mpjpe: float | None = None
    corrupt_windows: int = 0
    end_effectors_pck20: float | None = None
    #: the full evaluation document (``{split: {clean, full, mean_pose}, corruption}``) as JSON
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def pck20(self) -> float:
        """PCK@20 on the clean windows (the headline figure)."""
        return self.pck[0.2]

    @classmethod
    def from_results(cls, results: dict, split: str = "test") -> "Scores":
        """From the ``evaluate``/card ``metrics`` document (``{split: {clean, full, mean_pose}}``)."""
        from edgepose.metrics import pck_at

        r = results[split]
        clean, full, base = r["clean"], r.get("full"), r.get("mean_pose")
        ends = clean.get("end_effectors_pck")
        return cls(split=split, pck=_pck_table(clean), mpjpe=float(clean["mpjpe"]), windows=int(clean.get("n", 0)),
                   full_pck=_pck_table(full) if full else None, full_mpjpe=float(full["mpjpe"]) if full else None,
                   mean_pose_pck=_pck_table(base) if base else None,
                   mean_pose_mpjpe=float(base["mpjpe"]) if base else None,
                   corrupt_windows=int(r.get("corrupt_windows", 0)),
                   end_effectors_pck20=float(pck_at(ends, 0.2)) if ends else None, raw=results)

    def __str__(self) -> str:
        base = f", mean pose {100 * self.mean_pose_pck[0.2]:.2f}%" if self.mean_pose_pck else ""
        return (f"{self.split}: PCK@20 {100 * self.pck20:.2f}% (clean, {self.windows} windows){base}, "
                f"MPJPE {self.mpjpe:.4f}")


@dataclass
class Checkpoint:
    """A trained (fp32) checkpoint: ``path`` to its ``.safetensors``, its JSON ``card``."""

    path: Path
    card: dict

    @property
    def model(self) -> str:
        return str(self.card.get("model"))

    @property
    def params(self) -> int | None:
        return self.card.get("param_count")

    @property
    def scores(self) -> Scores | None:
        """Test-split scores recorded at training time, if any."""
        metrics = self.card.get("metrics") or {}
        return Scores.from_results(metrics, "test") if "test" in metrics else None

    def __fspath__(self) -> str:
        return str(self.path)


@dataclass
class Artifact:
    """An exported artifact (``.onnx`` or ``.plan``) with its card and input/output contract."""

    path: Path
    card: dict
    scores: Scores | None = None

    @property
    def precision(self) -> str:
        return str(self.card.get("precision"))

    @property
    def method(self) -> str | None:
        return self.card.get("method")

    @property
    def target(self) -> str | None:
        return self.card.get("target")

    @property
    def input(self) -> dict:
        """``{"name", "shape", "dtype"}`` of the model input."""
        return dict(self.card.get("input") or {})

    @property
    def output(self) -> dict:
        """``{"name", "shape", "units"}`` of the model output."""
        return dict(self.card.get("output") or {})

    @property
    def size_bytes(self) -> int:
        return int(self.card.get("bytes") or self.path.stat().st_size)

    @classmethod
    def load(cls, path: str | Path) -> "Artifact":
        """An artifact and its card (``<path>.json``)."""
        from edgepose.exporting.card import read_artifact_card

        path = Path(path)
        if not path.is_file():
            raise EdgeposeError("artifact not found", path)
        card = read_artifact_card(path)
        if card is None:
            raise EdgeposeError(f"no card {path.name}.json beside the artifact", path)
        return cls(path, card)

    def __fspath__(self) -> str:
        return str(self.path)


@dataclass
class BenchResult:
    """The bench results document (schema-versioned JSON) and where it was written."""

    doc: dict
    path: Path | None = None
    csv: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def rows(self) -> list[dict]:
        return list(self.doc.get("rows", []))

    @property
    def skipped(self) -> list[dict]:
        return list(self.doc.get("skipped", []))

    @property
    def machine(self) -> dict:
        return dict(self.doc.get("machine", {}))

    def save(self, path: str | Path) -> Path:
        """Write the JSON (and the CSV beside it); returns the JSON path."""
        from edgepose.benchmarking import write_results

        self.path, self.csv = write_results(self.doc, Path(path))
        return self.path
