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
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from edgepose.errors import EdgeposeError
from edgepose.results import Artifact, BenchResult, Checkpoint, Scores

if TYPE_CHECKING:  # pragma: no cover
    from edgepose.data.base import CSIDataset
    from edgepose.pipeline import PipelineResult

_LOG = logging.getLogger("edgepose")
Log = Callable[[str], None]

__all__ = ["analyze", "bench", "doctor", "evaluate", "export",
           "list_models", "list_pretrained", "load_checkpoint", "load_dataset", "package", "report", "run",
           "synthesize", "train", "verify"]


def _log(log: Log | None) -> Log:
    return log or _LOG.info


# -- functions ------------------------------------------------------------------------------------

def list_models() -> list[str]:
    """Registered model variants (``wiflow-full``, ``wiflow-half``, …)."""
    from edgepose.models import list_models as _list

    return _list()


def list_pretrained():
    """The shipped checkpoints of the model zoo (``models/``), with their recorded PCK."""
    from edgepose.zoo import list_pretrained as _list

    return _list()


def load_dataset(path: str | Path) -> "CSIDataset":
    """Open a dataset folder in any supported layout (WiFlow, MM-Fi); validates it."""
    from edgepose.data import open_dataset

    return open_dataset(path)


def synthesize(out: str | Path, layout: str = "wiflow", overwrite: bool = False, workers: int | None = None,
               **config) -> Path:
    """Generate the physics-based synthetic dataset into ``out``; ``config`` overrides
    :class:`edgepose.data.synth.SynthConfig` fields (``subjects``, ``takes``, ``duration_s``, …);
    ``workers``: processes that simulate recordings (None: one per CPU where processes can be
    forked; the data is the same for any count)."""
    from dataclasses import replace

    from edgepose.data.synth import synthesize as _synth
    from edgepose.data.synth.generate import default_config

    try:
        cfg = replace(default_config(layout), **config)
    except (TypeError, ValueError) as exc:
        raise EdgeposeError(f"bad synthetic-data option: {exc}") from None
    try:
        _synth(out, cfg, overwrite=overwrite, layout=layout, workers=workers)
    except ValueError as exc:
        raise EdgeposeError(str(exc), out) from None
    return Path(out)


def train(data: str | Path, model: str | None = "wiflow-half", out: str | Path | None = None,
          preset: str = "reference", epochs: int | None = None, resume: bool = False, progress: bool = False,
          log: Log | None = None, config_file: str | Path | None = None, **options) -> Checkpoint | None:
    """Train ``model`` on ``data``; returns the best checkpoint (by validation).

    ``preset`` (``reference``, ``cpu-budget``, ``zoo``) then ``config_file`` then ``options``
    (:class:`edgepose.training.TrainConfig` fields: ``lr``, ``batch_size``, ``seed``, ``threads``,
    ``device`` …) make the config, later wins. Under ``torchrun`` every rank trains; only rank 0
    writes and returns the checkpoint (the others return ``None``).
    """
    from edgepose.training import TrainConfig, fit

    out = Path(out) if out is not None else Path("runs") / (model or "model")
    cfg = TrainConfig.compose(preset, config_file, model=model, epochs=epochs, **options)
    recipe = preset + (f" + {Path(config_file).name}" if config_file is not None else "")
    card = fit(cfg, data, out, resume=resume, progress=progress, log=_log(log), recipe=recipe)
    return load_checkpoint(out / "best.safetensors") if card else None


def load_checkpoint(path_or_name: str | Path | Checkpoint) -> Checkpoint:
    """A checkpoint by path, run folder or zoo name (``wiflow-half``, ``models/wiflow-half``)."""
    from edgepose.training import read_card
    from edgepose.zoo import resolve_checkpoint

    if isinstance(path_or_name, Checkpoint):
        return path_or_name
    path = resolve_checkpoint(path_or_name)
    return Checkpoint(path, read_card(path))


def evaluate(model: str | Path | Checkpoint | Artifact, data: str | Path | None = None, split: str = "test",
             allow_other_data: bool = False, device: str = "cpu") -> Scores:
    """Locked PCK@10..50 and MPJPE of a checkpoint or an ONNX artifact on ``split``.

    ``data`` defaults to the dataset the checkpoint was trained on (found by fingerprint); a
    different dataset is refused unless ``allow_other_data``.
    """
    from edgepose.data import SplitSpec, open_dataset
    from edgepose.evaluation import score_splits
    from edgepose.predictors import load_predictor
    from edgepose.zoo import resolve_checkpoint, resolve_dataset

    if isinstance(model, Artifact):
        loaded = load_predictor(model.path, model.card, device)
    elif Path(model).suffix == ".onnx":
        loaded = load_predictor(Artifact.load(model).path, device=device)
    else:
        loaded = load_predictor(resolve_checkpoint(model.path if isinstance(model, Checkpoint) else model),
                                device=device)
    card, shape, joints = loaded.checkpoint_card, loaded.window_shape, loaded.joints
    ds = open_dataset(resolve_dataset(card, data, "scoring", allow_other_data=allow_other_data))
    if shape and (tuple(ds.window_shape) != tuple(shape) or (joints and ds.layout.n_joints != joints)):
        raise EdgeposeError(f"the model expects windows {shape[0]}×{shape[1]} and {joints} joints; the dataset has "
                            f"{ds.window_shape[0]}×{ds.window_shape[1]} and {ds.layout.n_joints}", ds.path)
    results = score_splits(loaded.predict, ds, SplitSpec.from_card(card), splits=(split,))
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

    ``options`` are :class:`edgepose.exporting.ExportRequest` fields: ``calib`` (minmax, entropy,
    percentile), ``target`` (ort-cpu, tensorrt), ``recipe``, ``engine``, ``calib_count``, ``qat_epochs`` …
    """
    from dataclasses import fields

    from edgepose.exporting import ExportRequest
    from edgepose.exporting import export as _export

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

    ``options`` go to :func:`edgepose.benchmarking.bench` (``rounds``, ``plan``, ``isolate``, ``spinning`` …).
    With ``out`` the JSON (and CSV) are written there.
    """
    from edgepose.benchmarking import bench as _bench

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
           max_drop_pp: float | None = None, sensitivity: Sequence[str | Path] | None = None) -> Path:
    """Build the trade-off report (Markdown + PNGs, self-contained HTML); returns the HTML page.

    ``max_drop_pp`` is the accuracy gate: the lower end of an artifact's ΔPCK@20 95 % interval on
    test may be at most this far below fp32 (default :data:`edgepose.metrics.ACCURACY_GATE_PP`). ``sensitivity``: ``sensitivity.json`` files from ``analyze``
    to include (default: any found beside the results files)."""
    from edgepose.metrics import ACCURACY_GATE_PP
    from edgepose.reporting import build_report

    max_drop_pp = ACCURACY_GATE_PP if max_drop_pp is None else max_drop_pp

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
    from edgepose.pipeline import run as _run

    return _run(out, **options)


def analyze(checkpoint: str | Path | Checkpoint, data: str | Path | None = None, out: str | Path | None = None,
            log: Log | None = None, **options):
    """Per-group int8 sensitivity on the validation split (and, with ``speed=True``, each group's int8 gain in µs).

    ``options`` go to :func:`edgepose.analysis.analyze` (``target``, ``calib``, ``val_windows``, ``speed``,
    ``batches``, ``speed_threads``, ``runtime`` …). With ``out`` the JSON, Markdown and plot are
    written there (``edgepose report`` picks them up). Returns a
    :class:`~edgepose.analysis.SensitivityResult`.
    """
    from edgepose.analysis.sensitivity import analyze as _analyze

    ckpt = checkpoint.path if isinstance(checkpoint, Checkpoint) else checkpoint
    result = _analyze(ckpt, data=Path(data) if data is not None else None, log=_log(log), **options)
    if out is not None:
        result.write(Path(out))
    return result


def doctor() -> dict:
    """What this box can run: versions, CPU ISA, providers, GPU, optional extras, runnable precisions."""
    from edgepose.diagnostics import collect

    return collect()


def package(artifact: str | Path | Artifact, out: str | Path, **options) -> Path:
    """Seal an artifact into a self-checking ``.edgepose`` bundle (see :func:`edgepose.deployment.package`)."""
    from edgepose.deployment import package as _package

    path = artifact.path if isinstance(artifact, Artifact) else Path(artifact)
    return _package(Path(path), Path(out), **options)


def verify(bundle: str | Path, **options):
    """Box-side verification of a bundle (see :func:`edgepose.runtime.verify.verify`)."""
    from edgepose.runtime.verify import verify as _verify

    return _verify(bundle, **options)
