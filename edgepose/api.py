"""The Python API: the whole chain as plain functions with typed results.

``import edgepose as ep`` exposes everything here lazily (plain ``import edgepose`` imports no
torch). Every ``edgepose`` command calls one of these functions; progress goes to the ``log``
callback when given, else to the ``edgepose`` logger (``logging.basicConfig(level="INFO")`` shows
it). Example::

    import edgepose as ep

    data = ep.synthesize("data/small", subjects=2, takes=1, duration_s=2.0)
    ckpt = ep.train(data, model="wiflow-tiny", out="runs/tiny", epochs=2)
    arts = ep.export(ckpt, precision="int8", out="artifacts")
    print(ep.evaluate(arts[0]).pck20)
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from .errors import EdgeposeError

if TYPE_CHECKING:  # pragma: no cover
    from .data.base import CSIDataset
    from .pipeline import PipelineResult

_LOG = logging.getLogger("edgepose")
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)
Log = Callable[[str], None]

__all__ = ["Artifact", "BenchResult", "Checkpoint", "Scores", "bench", "doctor", "evaluate", "export",
           "list_models", "list_pretrained", "load_checkpoint", "load_dataset", "package", "report", "run",
           "synthesize", "train", "verify"]


def _log(log: Log | None) -> Log:
    return log or _LOG.info


# -- typed results ------------------------------------------------------------------------------

def _pck_table(m: dict) -> dict[float, float]:
    from .metrics import pck_at

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
        from .metrics import pck_at

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
        from .export.card import read_artifact_card

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
        from .bench import write_results

        self.path, self.csv = write_results(self.doc, Path(path))
        return self.path


# -- functions ------------------------------------------------------------------------------------

def list_models() -> list[str]:
    """Registered model variants (``wiflow-full``, ``wiflow-half``, …)."""
    from .models import list_models as _list

    return _list()


def list_pretrained():
    """The shipped checkpoints of the model zoo (``models/``), with their recorded PCK."""
    from .zoo import list_pretrained as _list

    return _list()


def load_dataset(path: str | Path) -> "CSIDataset":
    """Open a dataset folder in any supported layout (WiFlow, MM-Fi); validates it."""
    from .data import open_dataset

    return open_dataset(path)


def synthesize(out: str | Path, layout: str = "wiflow", overwrite: bool = False, **config) -> Path:
    """Generate the physics-based synthetic dataset into ``out``; ``config`` overrides
    :class:`edgepose.data.synth.SynthConfig` fields (``subjects``, ``takes``, ``duration_s``, …)."""
    from dataclasses import replace

    from .data.synth import synthesize as _synth
    from .data.synth.generate import default_config

    try:
        cfg = replace(default_config(layout), **config)
    except (TypeError, ValueError) as exc:
        raise EdgeposeError(f"bad synthetic-data option: {exc}") from None
    try:
        _synth(out, cfg, overwrite=overwrite, layout=layout)
    except ValueError as exc:
        raise EdgeposeError(str(exc), out) from None
    return Path(out)


def train(data: str | Path, model: str | None = "wiflow-half", out: str | Path | None = None,
          preset: str = "reference", epochs: int | None = None, resume: bool = False, progress: bool = False,
          log: Log | None = None, config_file: str | Path | None = None, **options) -> Checkpoint | None:
    """Train ``model`` on ``data``; returns the best checkpoint (by validation).

    ``preset`` (``reference``, ``cpu-budget``, ``zoo``) then ``config_file`` then ``options``
    (:class:`edgepose.train.TrainConfig` fields: ``lr``, ``batch_size``, ``seed``, ``threads``,
    ``device`` …) make the config, later wins. Under ``torchrun`` every rank trains; only rank 0
    writes and returns the checkpoint (the others return ``None``).
    """
    from .train import TrainConfig, fit

    out = Path(out) if out is not None else Path("runs") / (model or "model")
    cfg = TrainConfig.compose(preset, config_file, model=model, epochs=epochs, **options)
    recipe = preset + (f" + {Path(config_file).name}" if config_file is not None else "")
    card = fit(cfg, data, out, resume=resume, progress=progress, log=_log(log), recipe=recipe)
    return load_checkpoint(out / "best.safetensors") if card else None


def load_checkpoint(path_or_name: str | Path | Checkpoint) -> Checkpoint:
    """A checkpoint by path, run folder or zoo name (``wiflow-half``, ``models/wiflow-half``)."""
    from .train import read_card
    from .zoo import resolve_checkpoint

    if isinstance(path_or_name, Checkpoint):
        return path_or_name
    path = resolve_checkpoint(path_or_name)
    return Checkpoint(path, read_card(path))


def _parent_card(card: dict) -> dict:
    """The checkpoint card an artifact was exported from (or a stub with its fingerprints)."""
    from .train import read_card

    parent = card.get("parent") or {}
    ckpt = parent.get("checkpoint")
    if ckpt and Path(ckpt).with_suffix(".json").is_file():
        try:
            return read_card(ckpt)
        except EdgeposeError:
            pass
    return {"dataset": {"fingerprint": parent.get("dataset_fingerprint")},
            "split": {"fingerprint": parent.get("split_fingerprint")}}


def evaluate(model: str | Path | Checkpoint | Artifact, data: str | Path | None = None, split: str = "test",
             allow_other_data: bool = False, device: str = "cpu") -> Scores:
    """Locked PCK@10..50 and MPJPE of a checkpoint or an ONNX artifact on ``split``.

    ``data`` defaults to the dataset the checkpoint was trained on (found by fingerprint); a
    different dataset is refused unless ``allow_other_data``.
    """
    from .data import SplitSpec, open_dataset
    from .evaluate import evaluate as _evaluate
    from .zoo import resolve_dataset

    path = Path(model.path if isinstance(model, (Checkpoint, Artifact)) else model)
    if path.suffix in (".onnx",) or isinstance(model, Artifact):
        art = model if isinstance(model, Artifact) else Artifact.load(path)
        card = _parent_card(art.card)
        from .runtime.session import ort_predict, ort_session

        sess = ort_session(art.path)
        predict = lambda x: ort_predict(sess, x)  # noqa: E731
        shape, joints = tuple(art.card.get("window_shape") or ()), art.card.get("joints")
    else:
        from .evaluate import torch_predictor
        from .train import load_checkpoint as _load

        ckpt = load_checkpoint(model if isinstance(model, Checkpoint) else path)
        net, card = _load(ckpt.path)
        predict = torch_predictor(net, device)
        shape, joints = (net.cfg.in_channels, net.cfg.window), net.cfg.joints
    ds = open_dataset(resolve_dataset(card, data, "scoring", allow_other_data=allow_other_data))
    if shape and (tuple(ds.window_shape) != tuple(shape) or (joints and ds.layout.n_joints != joints)):
        raise EdgeposeError(f"the model expects windows {shape[0]}×{shape[1]} and {joints} joints; the dataset has "
                            f"{ds.window_shape[0]}×{ds.window_shape[1]} and {ds.layout.n_joints}", ds.path)
    s = card.get("split") or {}
    spec = SplitSpec(s.get("seed", 42), tuple(s.get("fractions", (0.7, 0.15, 0.15))))
    results = _evaluate(predict, ds, spec, splits=(split,))
    want = (card.get("dataset") or {}).get("fingerprint")
    if want and want != ds.fingerprint:
        results["warning"] = "dataset fingerprint differs from the one the checkpoint was trained on"
    scores = Scores.from_results(results, split)
    if isinstance(model, Artifact):
        model.scores = scores
    return scores


def export(checkpoint: str | Path | Checkpoint, precision: str = "int8", method: str | None = None,
           data: str | Path | None = None, out: str | Path = "artifacts", log: Log | None = None,
           **options) -> list[Artifact]:
    """Export a checkpoint to ONNX (``fp32``, ``fp16``, ``int8`` PTQ/QAT) and optionally a TensorRT engine.

    ``options`` are :class:`edgepose.export.ExportRequest` fields: ``calib`` (minmax, entropy,
    percentile), ``target`` (ort-cpu, tensorrt), ``recipe``, ``engine``, ``calib_count``, ``qat_epochs`` …
    """
    from dataclasses import fields

    from .export import ExportRequest
    from .export import export as _export

    known = {f.name for f in fields(ExportRequest)} - {"checkpoint", "out", "precision", "method", "data", "log"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise EdgeposeError(f"unknown export option(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
    ckpt = checkpoint.path if isinstance(checkpoint, Checkpoint) else checkpoint
    req = ExportRequest(checkpoint=Path(ckpt), out=Path(out), precision=precision, method=method,
                        data=Path(data) if data is not None else None, log=_log(log), **options)
    return [Artifact.load(p) for p in _export(req)]


def _artifact_folder(items: Sequence[Artifact | str | Path], tmp: Path) -> Path:
    """A folder holding exactly the given artifacts (links to them and their cards)."""
    for item in items:
        path = Path(item.path if isinstance(item, Artifact) else item)
        for f in (path, path.with_name(path.name + ".json")):
            if not f.is_file():
                raise EdgeposeError("artifact or its card not found", f)
            os.symlink(f.resolve(), tmp / f.name)
    return tmp


def bench(artifacts: str | Path | Iterable[Artifact | str | Path], device: str = "cpu",
          batches: Sequence[int] = (1, 64), threads: int = 0, data: str | Path | None = None,
          out: str | Path | None = None, accuracy: bool = True, log: Log | None = None, **options) -> BenchResult:
    """Benchmark a folder of artifacts, or a list of them: size, latency in paired rounds, locked accuracy.

    ``options`` go to :func:`edgepose.bench.bench` (``rounds``, ``plan``, ``isolate``, ``spinning`` …).
    With ``out`` the JSON (and CSV) are written there.
    """
    from .bench import bench as _bench

    kw = dict(device=device, batches=tuple(batches), threads=threads, data=Path(data) if data else None,
              accuracy=accuracy, log=_log(log), **options)
    if isinstance(artifacts, (str, Path)):
        doc = _bench(Path(artifacts), **kw)
    else:
        with tempfile.TemporaryDirectory(prefix="edgepose-bench-") as tmp:
            doc = _bench(_artifact_folder(list(artifacts), Path(tmp)), **kw)
    result = BenchResult(doc)
    if out is not None:
        result.save(out)
    return result


def report(results: BenchResult | str | Path | Sequence[BenchResult | str | Path], out: str | Path = "report",
           max_drop_pp: float = 1.0, sensitivity: Sequence[str | Path] | None = None) -> Path:
    """Build the trade-off report (Markdown + PNGs, self-contained HTML); returns the HTML page.

    ``max_drop_pp`` is the accuracy gate: the lower end of an artifact's ΔPCK@20 95 % interval may
    be at most this far below fp32. ``sensitivity``: ``sensitivity.json`` files from ``analyze``
    to include (default: any found beside the results files)."""
    from .report import build_report

    items = [results] if isinstance(results, (BenchResult, str, Path)) else list(results)
    paths = []
    with tempfile.TemporaryDirectory(prefix="edgepose-report-") as tmp:
        for i, r in enumerate(items):
            if isinstance(r, BenchResult):
                paths.append(r.path if r.path is not None else BenchResult(r.doc).save(Path(tmp) / f"results{i}.json"))
            else:
                paths.append(Path(r))
        _md, page = build_report(paths, Path(out), max_drop_pp=max_drop_pp,
                                 sensitivity=[Path(p) for p in sensitivity] if sensitivity is not None else None)
    return Path(page)


def run(out: str | Path = "runs/default", **options) -> "PipelineResult":
    """The whole pipeline (see :func:`edgepose.pipeline.run` for the options)."""
    from .pipeline import run as _run

    return _run(out, **options)


def analyze(checkpoint: str | Path | Checkpoint, data: str | Path | None = None, out: str | Path | None = None,
            log: Log | None = None, **options):
    """Per-group int8 sensitivity on the validation split (and, with ``speed=True``, each group's int8 gain in µs).

    ``options`` go to :func:`edgepose.analyze.analyze` (``target``, ``calib``, ``val_windows``, ``speed``,
    ``batches``, ``speed_threads``, ``runtime`` …). With ``out`` the JSON, Markdown and plot are
    written there (``edgepose report`` picks them up). Returns a
    :class:`~edgepose.analyze.SensitivityResult`.
    """
    from .analyze.sensitivity import analyze as _analyze

    ckpt = checkpoint.path if isinstance(checkpoint, Checkpoint) else checkpoint
    result = _analyze(ckpt, data=Path(data) if data is not None else None, log=_log(log), **options)
    if out is not None:
        result.write(Path(out))
    return result


def doctor() -> dict:
    """What this box can run: versions, CPU ISA, providers, GPU, optional extras, runnable precisions."""
    from .doctor import collect

    return collect()


def package(artifact: str | Path | Artifact, out: str | Path, **options) -> Path:
    """Seal an artifact into a self-checking ``.edgepose`` bundle (see :func:`edgepose.deploy.package`)."""
    from .deploy import package as _package

    path = artifact.path if isinstance(artifact, Artifact) else Path(artifact)
    return _package(Path(path), Path(out), **options)


def verify(bundle: str | Path, **options):
    """Box-side verification of a bundle (see :func:`edgepose.runtime.verify.verify`)."""
    from .runtime.verify import verify as _verify

    return _verify(bundle, **options)
