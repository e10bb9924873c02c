"""Where held-out precision is lost: PCK@20 per activity, for checkpoints and for a pose lookup.

For each checkpoint (zoo name or path) on its own dataset: clean PCK@20 per activity on the
validation and test splits and on an evenly spaced training subset (the memorisation check),
next to the same dataset's mean pose and its 1-nearest-neighbour lookup (the pose of the nearest
clean training window, raw Euclidean distance — ``zoo_knn_probe.py``'s ``raw, k=1`` probe, here per
activity). Activities are read from the synthetic default's recording ids (``S07_waving_T2``); the
split is the locked seed-42 one. Every figure is a mean over windows (as the locked PCK is), with
the number of recordings beside it.

``--dense-data DIR``: the same recordings cut into windows at a finer stride (``edgepose data synth
--stride 5``; every setting but the stride must equal the first checkpoint's dataset). The lookup
is then repeated with training windows every 1, 2, … of the dense windows (every stride up to the
default's) against the same test windows (those that start where the default's do): how much of
the held-out loss is the training windows' sampling of each movement.

Usage:
    python3 benchmarks/held_out_by_activity.py wiflow-half /tmp/half-120/best.safetensors \\
        --label shipped --label 120-epochs --dense-data /tmp/synth-stride5 \
        --out benchmarks/results/held-out-by-activity.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

SPLITS = ("train-subset", "val", "test")
TRAIN_SUBSET = 2048


def activity_of(file_id: str) -> str:
    """``S07_raising_hands_T2`` → ``raising_hands``; a clear error for an id of another form."""
    head, _, rest = file_id.partition("_")
    activity, _, take = rest.rpartition("_")
    if not (head.startswith("S") and take.startswith("T") and activity):
        raise ValueError(f"recording id {file_id!r} is not the synthetic default's S<subject>_<activity>_T<take>")
    return activity


def split_windows(ds) -> dict[str, np.ndarray]:
    """Clean window indices per split (the training split thinned evenly to :data:`TRAIN_SUBSET`)."""
    from edgepose.data.split import evenly_spaced

    return {"train-subset": evenly_spaced(ds.indices("train", clean=True), TRAIN_SUBSET),
            "val": ds.indices("val", clean=True), "test": ds.indices("test", clean=True)}


def by_activity(ds, idx: np.ndarray, hits: np.ndarray) -> dict[str, dict]:
    """``{activity: {"pck20", "windows", "recordings"}}`` plus ``"all"`` for per-window hit fractions."""
    files = ds.window_file[idx]
    acts = np.array([activity_of(ds.file_ids[f]) for f in files])
    out = {}
    for act in sorted(map(str, set(acts))) + ["all"]:
        sel = np.ones(len(acts), bool) if act == "all" else acts == act
        out[act] = {"pck20": float(np.mean(hits[sel])), "windows": int(sel.sum()),
                    "recordings": int(len(np.unique(files[sel])))}
    return out


def lookup_hits(ds, windows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-window PCK@20 hit fraction of the 1-NN lookup and of the mean pose, for val and test."""
    import torch

    from common import window_hits
    from edgepose.evaluation import mean_pose

    xtr, ytr = ds.read(ds.indices("train", clean=True))
    tf = torch.from_numpy(xtr.reshape(len(xtr), -1).astype(np.float32))
    mean = mean_pose(ds)
    out = {}
    for split in ("val", "test"):
        x, y = ds.read(windows[split])
        q = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32))
        nn_idx = np.concatenate([torch.cdist(q[s:s + 256], tf).argmin(1).numpy() for s in range(0, len(q), 256)])
        out[f"lookup/{split}"] = window_hits(ytr[nn_idx], y, ds.layout.torso)
        out[f"mean_pose/{split}"] = window_hits(np.broadcast_to(mean, y.shape), y, ds.layout.torso)
    return out


def window_positions(ds) -> np.ndarray:
    """Each window's place within its recording (0, 1, …)."""
    pos = np.zeros(len(ds), dtype=np.int64)
    for f in np.unique(ds.window_file):
        w = np.flatnonzero(ds.window_file == f)
        pos[w] = np.arange(len(w))
    return pos


def stride_probe(dense_dir: Path, reference_config: dict) -> dict:
    """The 1-NN lookup per activity with training windows at every stride the dense set allows.

    Queries are the dense set's clean test windows that start where the reference dataset's do;
    an ``EdgeposeError`` when the dense set is not the reference's recordings at a finer stride.
    """
    import torch

    from common import window_hits
    from edgepose.data import open_dataset
    from edgepose.errors import EdgeposeError

    ds = open_dataset(dense_dir)
    meta = json.loads((Path(dense_dir) / "synth_meta.json").read_text(encoding="utf-8"))
    cfg = meta.get("config", {})
    other = {k for k in set(cfg) | set(reference_config) if k != "stride" and cfg.get(k) != reference_config.get(k)}
    ref_stride, stride = reference_config.get("stride"), cfg.get("stride")
    if other or not stride or not ref_stride or ref_stride % stride:
        raise EdgeposeError(f"not the checkpoint's recordings at a finer stride (differs in {sorted(other) or 'stride'})",
                            Path(dense_dir) / "synth_meta.json")
    step = ref_stride // stride
    pos = window_positions(ds)
    tr, te = ds.indices("train", clean=True), ds.indices("test", clean=True)
    te = te[pos[te] % step == 0]
    x, y = ds.read(te)
    q = torch.from_numpy(x.reshape(len(x), -1).astype(np.float32))
    rows = []
    for every in [e for e in range(1, step + 1) if step % e == 0]:
        sub = tr[pos[tr] % every == 0]
        xtr, ytr = ds.read(sub)
        tf = torch.from_numpy(xtr.reshape(len(xtr), -1).astype(np.float32))
        nn_idx = np.concatenate([torch.cdist(q[s:s + 128], tf).argmin(1).numpy() for s in range(0, len(q), 128)])
        hits = window_hits(ytr[nn_idx], y, ds.layout.torso)
        rows.append({"train_stride_packets": stride * every, "train_windows": int(len(sub)),
                     "by_activity": by_activity(ds, te, hits)})
    return {"data_fingerprint": ds.fingerprint, "stride": stride, "reference_stride": ref_stride,
            "query_windows": int(len(te)), "rows": rows}


def measure(checkpoints: list[str], labels: list[str], dense: Path | None = None) -> dict:
    """The JSON document: per checkpoint and split, and per dataset (lookup, mean pose), PCK@20 by activity."""
    from common import window_hits
    from edgepose.data import open_dataset
    from edgepose.evaluation import torch_predictor
    from edgepose.runtime.cpu import cpu_summary
    from edgepose.training.checkpoint import load_checkpoint
    from edgepose.zoo import resolve_checkpoint, resolve_dataset

    rows, datasets = [], {}
    for name, label in zip(checkpoints, labels):
        path = resolve_checkpoint(name)
        model, card = load_checkpoint(path)
        data = resolve_dataset(card, None, "scoring")
        fp = card["dataset"]["fingerprint"]
        ds = open_dataset(data)
        windows = split_windows(ds)
        if fp not in datasets:
            lk = lookup_hits(ds, windows)
            datasets[fp] = {"fingerprint": fp, "files": ds.n_files,
                            "rows": [{"predictor": kind, "split": split, "by_activity": by_activity(ds, windows[split], h)}
                                     for key, h in lk.items() for kind, split in [key.split("/")]]}
        predict = torch_predictor(model)
        for split in SPLITS:
            x, y = ds.read(windows[split])
            hits = window_hits(predict(x), y, ds.layout.torso)
            rows.append({"label": label, "checkpoint": str(name), "weights_sha256": card.get("weights_sha256"),
                         "epochs": (card.get("training") or {}).get("epochs_run"), "dataset_fingerprint": fp,
                         "split": split, "by_activity": by_activity(ds, windows[split], hits)})
    first = load_checkpoint(resolve_checkpoint(checkpoints[0]))[1]
    probe = stride_probe(dense, first["dataset"]["synth"]["config"]) if dense else None
    return {"tool": "benchmarks/held_out_by_activity.py",
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": cpu_summary(), "rows": rows, "datasets": list(datasets.values()), "stride_probe": probe}


def to_markdown(doc: dict) -> str:
    """Tables: one row per (predictor, split), one column per activity."""
    acts = sorted({a for r in doc["rows"] for a in r["by_activity"] if a != "all"})
    head = "| predictor | split | all | " + " | ".join(a.replace("_", " ") for a in acts) + " |"
    sep = "|---|---|---|" + "---|" * len(acts)
    lines = ["# Held-out PCK@20 by activity", "",
             f"Made by `{doc['tool']}` on {doc['created'][:10]}. Clean windows, locked seed-42 split; PCK@20 in %, "
             "a mean over windows; the train subset is evenly spaced training windows (the memorisation check). "
             "`lookup` predicts the pose of the nearest clean training window (raw distance), `mean pose` the "
             "training mean.", "", head, sep]

    def cells(by: dict) -> str:
        return " | ".join(f"{100 * by[a]['pck20']:.1f}" if a in by else "–" for a in ["all", *acts])

    for r in doc["rows"]:
        lines.append(f"| {r['label']} ({r['epochs']} epochs) | {r['split']} | {cells(r['by_activity'])} |")
    for d in doc["datasets"]:
        for r in d["rows"]:
            lines.append(f"| {r['predictor'].replace('_', ' ')} | {r['split']} | {cells(r['by_activity'])} |")
    probe = doc.get("stride_probe")
    if probe:
        lines += ["", "## The lookup against the training windows' stride", "",
                  f"The same recordings cut every {probe['stride']} packets; queries: the {probe['query_windows']:,} clean "
                  f"test windows that start every {probe['reference_stride']} packets (the default's); training windows "
                  "every N packets. Window length 20 packets (0.2 s).", "",
                  "| training stride (packets) | training windows | all | " + " | ".join(a.replace("_", " ") for a in acts) + " |",
                  "|---|---|---|" + "---|" * len(acts)]
        for r in probe["rows"]:
            lines.append(f"| {r['train_stride_packets']} | {r['train_windows']:,} | {cells(r['by_activity'])} |")
    test = next((r for r in doc["rows"] if r["split"] == "test"), None)
    if test:
        lines += ["", "Recordings per activity on test: " + ", ".join(
            f"{a.replace('_', ' ')} {test['by_activity'][a]['recordings'] if a in test['by_activity'] else 0}"
        for a in acts) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="zoo names or checkpoint paths (each scored on its own dataset)")
    ap.add_argument("--label", action="append", default=[], help="a label per checkpoint, in order")
    ap.add_argument("--dense-data", type=Path, default=None,
                    help="the first checkpoint's recordings at a finer --stride (edgepose data synth)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    labels = a.label or list(a.checkpoints)
    if len(labels) != len(a.checkpoints):
        ap.error(f"{len(labels)} --label for {len(a.checkpoints)} checkpoints")
    from edgepose.io import atomic_path, write_json

    doc = measure(a.checkpoints, labels, a.dense_data)
    write_json(a.out, doc)
    with atomic_path(a.out.with_suffix(".md")) as tmp:
        tmp.write_text(to_markdown(doc), encoding="utf-8")
    print(to_markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
