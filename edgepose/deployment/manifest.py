"""Sections of a bundle's ``manifest.json``, each built from one source of truth.

* ``model`` — the artifact's export card (precision, method, recipe, calibrator, calibration);
* ``input`` — what a window is, from the card's window shape and the dataset's own metadata
  (``synth_meta.json`` of the synthetic default: channel order, frame rate, preprocessing);
* ``output`` — joint names, skeleton edges and the torso pair from :mod:`edgepose.skeleton`;
* ``parent`` — the parent checkpoint's card (dataset and split fingerprints, PCK);
* ``bench`` — the rows of ``edgepose bench`` results that measured this artifact file.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgepose.errors import EdgeposeError
from edgepose.io import read_json
from edgepose.runtime.window import CORRUPT_ABS_LIMIT
from edgepose.skeleton import get_layout

#: Missing frames a stream may fill by holding the previous one before windows count as gaps.
DEFAULT_MAX_HOLD = 2


def model_section(card: dict, artifact: Path, ort_file: str | None, ort_config: str | None,
                  ort_target: str | None) -> dict:
    recipe = card.get("recipe") or {}
    return {
        "file": "model.onnx", "ort_file": ort_file, "ort_required_operators": ort_config,
        "ort_target_platform": ort_target if ort_file else None,
        "name": card.get("model"), "param_count": card.get("param_count"),
        "source_artifact": artifact.name, "source_sha256": card.get("sha256"),
        "precision": card.get("precision"), "method": card.get("method"), "target": card.get("target"),
        "calibrator": recipe.get("calibrator") or recipe.get("calibrator_init"),
        "recipe": recipe, "calibration": card.get("calibration"), "opset": card.get("opset"),
        "parity": card.get("parity"), "tool_versions": card.get("tool_versions"),
    }


def dataset_meta(dataset_path: Path | None) -> dict:
    """The dataset's own description of its frames (``synth_meta.json``), or ``{}``."""
    if dataset_path is None:
        return {}
    meta = dataset_path / "synth_meta.json"
    if not meta.is_file():
        return {}
    try:
        return json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def input_section(card: dict, meta: dict, frame_rate: float | None) -> dict:
    c, t = (int(v) for v in card["window_shape"])
    cfg = meta.get("config") or {}
    rate = frame_rate if frame_rate is not None else cfg.get("packet_rate_hz")
    if meta.get("generator") == "edgepose.data.synth":
        prep = ("one frame = one received packet: the CSI amplitude |H| of each of the "
                f"{c} channels (computed from the radio's int8 I/Q), multiplied by 1/64; no per-window "
                "normalisation; a lost packet is filled by repeating the previous one")
    else:
        prep = ("as in the training dataset's csi_windows.npy (WiFlow preprocessed layout): one frame = "
                f"{c} CSI values of one packet; edgepose applies no further preprocessing")
    return {
        "name": (card.get("input") or {}).get("name", "csi"),
        "dtype": "float32",
        "shape": ["batch", c, t],
        "window": {
            "frames": t, "values_per_frame": c,
            "layout": "[values, frames]: window[:, t] is frame t, oldest first; a frame is [values]",
            "channel_order": meta.get("channel_layout"),
            "frame_rate_hz": rate,
            "duration_s": (t / rate) if rate else None,
            "preprocessing": prep,
        },
        "corruption_rule": {"non_finite": True, "max_abs": CORRUPT_ABS_LIMIT,
                            "meaning": f"a window with any NaN/inf or max|x| > {CORRUPT_ABS_LIMIT} gives "
                                       "a status and no keypoints"},
    }


def stream_section(card: dict, meta: dict, hop: int | None, max_hold: int) -> dict:
    t = int(card["window_shape"][1])
    stride = (meta.get("config") or {}).get("stride")
    hop = int(hop or stride or max(1, t // 2))
    return {
        "hop": hop, "first_pose_after_frames": t, "max_hold_frames": max_hold,
        "missing_frame": f"filled with the previous frame, up to {max_hold} in a row (what the training "
                         "data's preprocessing did with lost packets); a longer gap makes each window "
                         "holding it status 'gap: ...' with no keypoints",
        "corrupt_frame": "a frame with NaN/inf or max|x| over the limit makes each window holding it "
                         "status 'corrupt: ...' with no keypoints; it is never held in place of a later "
                         "missing frame",
    }


def output_section(card: dict, meta: dict) -> dict:
    layout = get_layout(card.get("layout") or "body25-15")
    if int(card.get("joints", layout.n_joints)) != layout.n_joints:
        raise EdgeposeError(f"card says {card.get('joints')} joints but layout {layout.name} has {layout.n_joints}")
    return {
        "name": (card.get("output") or {}).get("name", "keypoints"),
        "dtype": "float32", "shape": ["batch", layout.n_joints, 2],
        "units": "pixel/1000", "coordinates": meta.get("label_units") or "(x, y) image pixels divided by 1000",
        "layout": layout.name, "joints": list(layout.joints),
        "skeleton": [list(b) for b in layout.bones], "torso": list(layout.torso),
        "torso_names": [layout.joints[i] for i in layout.torso],
        "end_effectors": list(layout.end_effectors),
    }


def parent_section(ckpt_card: dict, checkpoint: Path) -> dict:
    card = {k: v for k, v in ckpt_card.items() if k != "history"}
    test = ((ckpt_card.get("metrics") or {}).get("test") or {}).get("clean") or {}
    pck = test.get("pck") or {}
    return {
        "checkpoint": str(checkpoint),
        "dataset_fingerprint": (ckpt_card.get("dataset") or {}).get("fingerprint"),
        "split_fingerprint": (ckpt_card.get("split") or {}).get("fingerprint"),
        "test_clean_pck20": pck.get("0.2", pck.get(0.2)),
        "test_clean_mpjpe": test.get("mpjpe"),
        "card": card,
    }


def bench_section(bench: Path | None, artifact: Path) -> dict | None:
    """This artifact's rows of an ``edgepose bench`` results file (ORT CPU first), or ``None``."""
    if bench is None:
        return None
    doc = read_json(bench)
    if not isinstance(doc, dict) or doc.get("schema") != "edgepose-bench":
        raise EdgeposeError("not an edgepose bench results file", bench)
    size = artifact.stat().st_size
    # same file name and, where the row records it, the same size: a renamed or re-exported
    # artifact must not inherit another file's figures
    rows = [r for r in doc.get("rows", []) if r.get("artifact") == artifact.name
            and r.get("bytes") in (None, size)]
    machine = doc.get("machine") or {}
    keep = {k: machine.get(k) for k in ("cpu_model", "arch", "cpu_count", "cpu_flags", "platform", "versions", "gpu")}
    base = {"source": bench.name, "created": doc.get("created"), "device": doc.get("device"),
            "threads": doc.get("threads"), "parallel": doc.get("parallel", "intra"), "machine": keep}
    if not rows:
        return {**base, "figures": None, "rows": [],
                "note": f"no row for {artifact.name} in {bench.name}"}
    rows.sort(key=lambda r: r.get("backend") != "ort-cpu")
    row = rows[0]
    b1 = (row.get("latency") or {}).get("1") or {}
    pck = (((row.get("accuracy") or {}).get("clean") or {}).get("pck")) or {}
    figures = {"backend": row.get("backend"), "size_mb": row.get("size_mb"),
               "p50_ms": b1.get("p50_ms"), "p99_ms": b1.get("p99_ms"),
               "pck20": next((v for k, v in pck.items() if abs(float(k) - 0.2) < 1e-9), None)}
    return {**base, "figures": figures,
            "rows": [{k: r.get(k) for k in ("label", "backend", "size_mb", "latency", "accuracy")} for r in rows]}
