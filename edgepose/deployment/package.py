"""``edgepose package``: one exported ONNX artifact → one sealed, self-checking ``.edgepose`` bundle.

Steps: check the artifact against its card; read the parent checkpoint's card and the dataset
(same fingerprint as the artifact's parent); pick golden windows from the clean test split and
record what the artifact gives on them here, with a tolerance (:mod:`.golden`); optionally
convert to ONNX Runtime format (:mod:`.ort_format`); add bench figures; time the bundle at
batch 1 on this machine through the runtime itself; write the zip under a temporary name and
rename it into place. SIGINT or SIGTERM at any point leaves neither the bundle nor a temporary
file behind.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from edgepose.version import __version__
from edgepose.data import SplitSpec, open_dataset
from edgepose.errors import EdgeposeError
from edgepose.interrupt import terminate_as_interrupt
from edgepose.io import atomic_path, read_json, sha256_file
from edgepose.runtime import bundle as rb
from edgepose.runtime.cpu import cpu_summary
from edgepose.runtime.predictor import Predictor, default_threads
from edgepose.runtime.verify import measure_latency
from edgepose.deployment.golden import golden_outputs, golden_windows
from edgepose.deployment.manifest import (DEFAULT_MAX_HOLD, bench_section, dataset_meta, input_section, model_section,
                       output_section, parent_section, stream_section)
from edgepose.deployment.ort_format import convert_to_ort


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _artifact_card(artifact: Path) -> dict:
    if not artifact.is_file():
        raise EdgeposeError("artifact not found", artifact)
    if artifact.suffix != ".onnx":
        raise EdgeposeError("only ONNX artifacts (.onnx) can be packaged", artifact)
    card_path = artifact.with_name(artifact.name + ".json")
    if not card_path.is_file():
        raise EdgeposeError(f"no card {card_path.name} beside the artifact (export writes one)", artifact)
    card = read_json(card_path)
    if not isinstance(card, dict) or card.get("format") != "edgepose-artifact":
        raise EdgeposeError("not an edgepose artifact card", card_path)
    for key in ("precision", "window_shape", "parent"):
        if key not in card:
            raise EdgeposeError(f"artifact card has no {key!r}", card_path)
    if card.get("sha256") and sha256_file(artifact) != card["sha256"]:
        raise EdgeposeError(f"artifact does not match its card {card_path.name} (SHA-256 differs)", artifact)
    return card


def _parent_card(card: dict, checkpoint: Path | None, artifact: Path) -> tuple[dict, Path]:
    from edgepose.training.checkpoint import read_card

    path = checkpoint or Path(str((card.get("parent") or {}).get("checkpoint") or ""))
    if not str(path):
        raise EdgeposeError("the artifact card names no parent checkpoint: pass --checkpoint", artifact)
    try:
        ckpt = read_card(path)
    except EdgeposeError as exc:
        raise EdgeposeError(f"parent checkpoint card unreadable ({exc}); pass --checkpoint", artifact) from None
    want = (card.get("parent") or {}).get("weights_sha256")
    if want and ckpt.get("weights_sha256") and want != ckpt["weights_sha256"]:
        raise EdgeposeError("checkpoint is not the artifact's parent (weights SHA-256 differs)", path)
    return ckpt, path


def package(artifact: Path, out: Path, *, data: Path | None = None, bench: Path | None = None,
            ort_format: bool = False, ort_target: str = "amd64", golden: int = 8, checkpoint: Path | None = None,
            hop: int | None = None, max_hold: int = DEFAULT_MAX_HOLD, frame_rate: float | None = None,
            latency_seconds: float = 1.0, log: Callable[[str], None] = print) -> Path:
    """Build ``out`` (``NAME.edgepose``) from ``artifact`` (an exported ``.onnx`` with its card).

    ``data`` defaults to the dataset recorded in the parent checkpoint's card and must have the
    fingerprint the artifact was trained on. ``bench`` is an ``edgepose bench`` results file
    (its rows for this artifact file become the shipped figures). ``ort_format`` adds the ONNX
    Runtime format model for ``ort_target``. ``golden`` is the number of golden windows. Every
    problem is an :class:`EdgeposeError`; nothing is left at ``out`` unless it is complete.
    """
    artifact, out = Path(artifact), Path(out)
    if out.suffix != rb.SUFFIX:
        raise EdgeposeError(f"bundle name must end in {rb.SUFFIX}", out)
    if golden < 1:
        raise EdgeposeError(f"--golden must be at least 1, got {golden}")
    card = _artifact_card(artifact)
    ckpt, ckpt_path = _parent_card(card, checkpoint, artifact)
    ds_path = Path(data) if data else Path(str((ckpt.get("dataset") or {}).get("path") or ""))
    if not str(ds_path):
        raise EdgeposeError("no dataset for golden vectors: pass --data", artifact)
    ds = open_dataset(ds_path)
    want_fp = (card.get("parent") or {}).get("dataset_fingerprint")
    if want_fp and ds.fingerprint != want_fp:
        raise EdgeposeError("dataset is not the one the artifact's parent was trained on (fingerprint "
                            "differs); pass the right --data", ds_path)
    if tuple(ds.window_shape) != tuple(card["window_shape"]):
        raise EdgeposeError(f"dataset windows are {list(ds.window_shape)}, the artifact takes "
                            f"{card['window_shape']}", ds_path)
    spec = SplitSpec.from_card(ckpt)
    meta = dataset_meta(ds_path)
    bench_doc = bench_section(Path(bench), artifact) if bench else None

    with terminate_as_interrupt():
        out.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".package-", dir=out.parent))
        try:
            model = artifact.read_bytes()
            x, idx = golden_windows(ds, spec, golden)
            y, tolerance = golden_outputs(model, x, card["precision"], card=card)
            log(f"package: {len(x)} golden windows, tolerance {tolerance['max_abs']:.1e} "
                f"(measured optimised-vs-reference {tolerance['measured_optimised_vs_reference']:.1e})")
            members = {"model.onnx": model, "golden/inputs.npy": _npy(x), "golden/outputs.npy": _npy(y),
                       "artifact.card.json": json.dumps(card, indent=2).encode() + b"\n"}
            ort_file = ort_config = None
            if ort_format:
                (work / "model.onnx").write_bytes(model)
                ort_bytes, config = convert_to_ort(work / "model.onnx", work, ort_target)
                ort_file, ort_config = "model.ort", "model.required_operators.config"
                members[ort_file], members[ort_config] = ort_bytes, config
                log(f"package: ONNX Runtime format model {len(ort_bytes)} bytes ({ort_target})")
            manifest = {
                "format": rb.FORMAT, "schema_version": rb.SCHEMA_VERSION, "edgepose_version": __version__,
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "model": model_section(card, artifact, ort_file, ort_config, ort_target),
                "input": input_section(card, meta, frame_rate),
                "stream": stream_section(card, meta, hop, max_hold),
                "output": output_section(card, meta),
                "parent": parent_section(ckpt, ckpt_path),
                "golden": {"inputs": "golden/inputs.npy", "outputs": "golden/outputs.npy", "count": len(x),
                           "source": "clean test windows, evenly spaced over the test split",
                           "dataset_fingerprint": ds.fingerprint, "window_indices": idx.tolist(),
                           "tolerance": tolerance},
                "bench": bench_doc,
                "build": {"cpu": cpu_summary(), "onnxruntime": _ort_version(), "numpy": np.__version__},
            }
            threads = default_threads()
            probe = rb.Bundle(out, {**manifest, "members": {}}, members, "")
            pred = Predictor.load(probe, threads=threads)
            lat = measure_latency(pred, seconds=latency_seconds)
            manifest["build"]["latency"] = {**lat, "threads": threads, "parallel": pred.runner.mode,
                                            "note": "this machine at packaging time, through the runtime"}
            with atomic_path(out) as tmp:
                rb.write_bundle(tmp, manifest, members)
                digest = rb.file_sha256(tmp)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    log(f"package: wrote {out} ({out.stat().st_size} bytes, {len(members) + 1} members); "
        f"sha256 {digest}")
    return out


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__
