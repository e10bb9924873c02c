r"""Where held-out precision is lost: PCK@20 per activity, for checkpoints and for a pose lookup.

For each checkpoint (zoo name or path) on its own dataset and split: clean PCK@20 per activity on
the validation and test splits and on an evenly spaced training subset (the memorisation check),
next to the same dataset's mean pose and its 1-nearest-neighbour lookup (the pose of the nearest
clean training window, raw Euclidean distance — ``zoo_knn_probe.py``'s ``raw, k=1`` probe, here per
activity). Activities are read from the synthetic default's recording ids (``S07_waving_T2``).
Every figure is a mean over windows (as the locked PCK is), with the number of recordings and a
95 % interval from a bootstrap over recordings (per activity only 6–12 test recordings: wide).

``--dense-data DIR``: the same recordings cut into windows at a finer stride (``edgepose data synth
--stride 5``; every setting but the stride must equal the first checkpoint's dataset). The lookup
is then repeated with training windows every 1, 2, … of the dense windows (every stride up to the
default's) against exactly the default's clean test windows: how much of the lookup's held-out loss
is the training windows' sampling of each movement. Windows that start where the default's do are
taken from the default dataset (its corrupt-window mask), the others from the dense one (its own),
so the row at the default's stride is the default's lookup, window for window.

Usage:
    python3 benchmarks/held_out_by_activity.py wiflow-half CK60 CK120 \
        --label shipped --label 60-epochs --label 120-epochs --dense-data DENSE \
        --out benchmarks/results/held-out-by-activity.json
    python3 benchmarks/held_out_by_activity.py wiflow-half --label shipped \
        --merge benchmarks/results/held-out-by-activity.json --relabel "shipped=first v2 zoo" --out …
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

if TYPE_CHECKING:  # pragma: no cover
    from edgepose.data import SplitSpec
    from edgepose.data.base import CSIDataset

SPLITS = ("train-subset", "val", "test")
TRAIN_SUBSET = 2048
_RECORDING_ID = re.compile(r"^S\d+_(?P<activity>[a-z_]+?)_T\d+$")


def activity_of(file_id: str) -> str:
    """``S07_raising_hands_T2`` → ``raising_hands``; a ``ValueError`` naming an id of another form."""
    m = _RECORDING_ID.match(file_id)
    if not m:
        raise ValueError(f"recording id {file_id!r} is not the synthetic default's S<subject>_<activity>_T<take>")
    return m.group("activity")


def split_windows(ds: "CSIDataset", spec: "SplitSpec") -> dict[str, np.ndarray]:
    """Clean window indices per split (the training split thinned evenly to :data:`TRAIN_SUBSET`)."""
    from edgepose.data.split import evenly_spaced

    return {"train-subset": evenly_spaced(ds.indices("train", clean=True, spec=spec), TRAIN_SUBSET),
            "val": ds.indices("val", clean=True, spec=spec), "test": ds.indices("test", clean=True, spec=spec)}


def by_activity(ds: "CSIDataset", idx: np.ndarray, hits: np.ndarray) -> dict[str, dict]:
    """``{activity: {"pck20", "low", "high", "windows", "recordings"}}`` plus ``"all"``, from per-window
    hit fractions; ``low``/``high``: the 95 % interval of the mean from a bootstrap over recordings."""
    from edgepose.stats import paired_bootstrap_delta

    if len(idx) == 0:
        raise ValueError("no windows to score")
    files = ds.window_file[idx]
    acts = np.array([activity_of(ds.file_ids[f]) for f in files])
    out = {}
    for act in sorted(map(str, set(acts))) + ["all"]:
        sel = np.ones(len(acts), bool) if act == "all" else acts == act
        ci = paired_bootstrap_delta(hits[sel], np.zeros(int(sel.sum())), files[sel], scale=1.0)
        out[act] = {"pck20": float(np.mean(hits[sel])), "low": ci.low_pp, "high": ci.high_pp,
                    "windows": int(sel.sum()), "recordings": int(len(np.unique(files[sel])))}
    return out


def nearest(train_x: np.ndarray, query_x: np.ndarray) -> np.ndarray:
    """Index of the nearest training window (Euclidean, flattened) of every query window:
    ``zoo_knn_probe.knn`` with k = 1 on raw windows."""
    from zoo_knn_probe import knn

    return knn(train_x.reshape(len(train_x), -1), query_x.reshape(len(query_x), -1), 1)[:, 0]


def lookup_hits(ds: "CSIDataset", spec: "SplitSpec", windows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-window PCK@20 hit fraction of the 1-NN lookup and of the mean pose, for val and test."""
    from common import window_hits
    from edgepose.evaluation import mean_pose

    xtr, ytr = ds.read(ds.indices("train", clean=True, spec=spec))
    mean = mean_pose(ds, spec)
    out = {}
    for split in ("val", "test"):
        x, y = ds.read(windows[split])
        out[f"lookup/{split}"] = window_hits(ytr[nearest(xtr, x)], y, ds.layout.torso)
        out[f"mean_pose/{split}"] = window_hits(np.broadcast_to(mean, y.shape), y, ds.layout.torso)
    return out


def window_positions(ds: "CSIDataset") -> np.ndarray:
    """Each window's place within its recording (0, 1, …)."""
    pos = np.zeros(len(ds), dtype=np.int64)
    for f in np.unique(ds.window_file):
        w = np.flatnonzero(ds.window_file == f)
        pos[w] = np.arange(len(w))
    return pos


def synth_config(path: Path) -> dict:
    """The generator config a synthetic dataset folder records (``synth_meta.json``)."""
    from edgepose.errors import EdgeposeError

    meta = Path(path) / "synth_meta.json"
    if not meta.is_file():
        raise EdgeposeError("not a synthetic dataset folder (no synth_meta.json)", Path(path))
    return json.loads(meta.read_text(encoding="utf-8")).get("config", {})


def stride_probe(dense_dir: Path, reference: "CSIDataset", reference_config: dict, spec: "SplitSpec") -> dict:
    """The 1-NN lookup per activity with training windows at every stride the dense set allows.

    Queries: the reference dataset's clean test windows. A training window that starts where a
    reference window does is that reference window (kept when the reference calls it clean); the
    others come from the dense set (kept when it calls them clean). An ``EdgeposeError`` when the
    dense set is not the reference's recordings at a finer stride.
    """
    from common import window_hits
    from edgepose.data import open_dataset
    from edgepose.errors import EdgeposeError

    cfg = synth_config(dense_dir)
    other = sorted(k for k in set(cfg) | set(reference_config)
                   if k not in ("stride", "train_stride") and cfg.get(k) != reference_config.get(k))
    if other:
        raise EdgeposeError(f"not the checkpoint's recordings: differs in {', '.join(other)}", Path(dense_dir))
    # the probe compares uniform grids: every file of each set cut at one stride
    for where, conf in (("the checkpoint's dataset", reference_config), (str(dense_dir), cfg)):
        if conf.get("train_stride") not in (None, conf.get("stride")):
            raise EdgeposeError(f"{where} cuts its training files every {conf['train_stride']} packets and the rest "
                                f"every {conf.get('stride')}: the stride probe needs one grid per dataset "
                                "(make the dense set with --train-stride 0)", Path(dense_dir))
    stride, ref_stride = cfg.get("stride"), reference_config.get("stride")
    if not stride or not ref_stride or ref_stride % stride or stride == ref_stride:
        raise EdgeposeError(f"stride {stride} does not divide the checkpoint's stride {ref_stride} into a finer one",
                            Path(dense_dir))
    dense = open_dataset(dense_dir)
    step = ref_stride // stride
    pos = window_positions(dense)
    if list(dense.file_ids) != list(reference.file_ids) or int((pos % step == 0).sum()) != len(reference):
        raise EdgeposeError("its recordings or window counts do not line up with the checkpoint's dataset", Path(dense_dir))
    te = reference.indices("test", clean=True, spec=spec)
    x, y = reference.read(te)
    ref_train = reference.indices("train", clean=True, spec=spec)
    dense_train = dense.indices("train", clean=True, spec=spec)
    xa, ya = reference.read(ref_train)
    rows = []
    for every in [e for e in range(1, step + 1) if step % e == 0]:
        between = dense_train[(pos[dense_train] % every == 0) & (pos[dense_train] % step != 0)]
        xb, yb = dense.read(between) if len(between) else (xa[:0], ya[:0])
        xtr, ytr = np.concatenate([xa, xb]), np.concatenate([ya, yb])
        hits = window_hits(ytr[nearest(xtr, x)], y, reference.layout.torso)
        rows.append({"train_stride_packets": stride * every, "train_windows": int(len(xtr)),
                     "by_activity": by_activity(reference, te, hits)})
    return {"data_fingerprint": dense.fingerprint, "stride": stride, "reference_stride": ref_stride,
            "window_packets": cfg.get("window"), "packet_rate_hz": cfg.get("packet_rate_hz"),
            "query_windows": int(len(te)), "rows": rows}


def measure(checkpoints: list[str], labels: list[str], dense: Path | None = None) -> dict:
    """The JSON document: per checkpoint and split, and per dataset (lookup, mean pose), PCK@20 by activity."""
    from common import window_hits
    from edgepose.data import SplitSpec, open_dataset
    from edgepose.errors import EdgeposeError
    from edgepose.evaluation import torch_predictor
    from edgepose.runtime.cpu import cpu_summary
    from edgepose.training.checkpoint import load_checkpoint
    from edgepose.zoo import resolve_checkpoint, resolve_dataset

    if len(checkpoints) != len(labels):
        raise ValueError(f"{len(labels)} labels for {len(checkpoints)} checkpoints")
    rows, datasets, probe = [], {}, None
    for name, label in zip(checkpoints, labels):
        model, card = load_checkpoint(resolve_checkpoint(name))
        ds = open_dataset(resolve_dataset(card, None, "scoring"))
        spec = SplitSpec.from_card(card)
        windows = split_windows(ds, spec)
        fp = card["dataset"]["fingerprint"]
        key = (fp, card.get("split", {}).get("fingerprint"))
        if key not in datasets:
            lk = lookup_hits(ds, spec, windows)
            config = ((card.get("dataset") or {}).get("synth") or {}).get("config") or {}
            datasets[key] = {"fingerprint": fp, "split_fingerprint": key[1], "files": ds.n_files,
                             "stride": config.get("stride"), "train_stride": config.get("train_stride"),
                             "rows": [{"predictor": kind, "split": split, "by_activity": by_activity(ds, windows[split], h)}
                                      for k, h in lk.items() for kind, split in [k.split("/")]]}
        if dense is not None and probe is None:
            synth = (card.get("dataset") or {}).get("synth") or {}
            if "config" not in synth:
                raise EdgeposeError("--dense-data needs a checkpoint trained on synthetic data (its card has no "
                                    "dataset.synth.config)", Path(str(name)))
            probe = stride_probe(dense, ds, synth["config"], spec)
        predict = torch_predictor(model)
        for split in SPLITS:
            x, y = ds.read(windows[split])
            hits = window_hits(predict(x), y, ds.layout.torso)
            rows.append({"label": label, "checkpoint": str(name), "weights_sha256": card.get("weights_sha256"),
                         "epochs": (card.get("training") or {}).get("epochs_run"), "dataset_fingerprint": fp,
                         "split": split, "by_activity": by_activity(ds, windows[split], hits)})
    return {"tool": "benchmarks/held_out_by_activity.py",
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": cpu_summary(), "rows": rows, "datasets": list(datasets.values()), "stride_probe": probe}


def merge(earlier: dict, new: dict, relabel: dict[str, str] | None = None) -> dict:
    """``new`` added to an ``earlier`` document whose checkpoints are not at hand any more.

    ``relabel`` renames the earlier rows' labels first (``{"shipped": "first v2 zoo"}`` when the
    zoo moved); then every earlier row whose label ``new`` measured again is dropped, and the rest
    are kept in front of ``new``'s rows. Earlier datasets stay first and in order (docs select
    ``datasets[0]``); ``new``'s are appended unless the same dataset and split are already there.
    ``new``'s stride probe replaces the earlier one only when it ran one. ``merged`` records what
    came from where (each row keeps its checkpoint's weights hash).
    """
    relabel = relabel or {}
    unknown = set(relabel) - {r["label"] for r in earlier["rows"]}
    if unknown:
        raise ValueError(f"--relabel names labels the earlier document does not have: {sorted(unknown)}")
    measured = {r["label"] for r in new["rows"]}
    kept = [dict(r, label=relabel.get(r["label"], r["label"])) for r in earlier["rows"]]
    kept = [r for r in kept if r["label"] not in measured]
    have = {(d["fingerprint"], d["split_fingerprint"]) for d in earlier["datasets"]}
    datasets = [*earlier["datasets"], *(d for d in new["datasets"]
                                        if (d["fingerprint"], d["split_fingerprint"]) not in have)]
    out = dict(new, rows=kept + new["rows"], datasets=datasets,
               stride_probe=new["stride_probe"] if new["stride_probe"] is not None else earlier.get("stride_probe"))
    out["merged"] = {"earlier_created": earlier.get("created"), "earlier_machine": earlier.get("machine"),
                     "earlier_labels": sorted({r["label"] for r in kept}), "relabelled": relabel,
                     "new_labels": sorted(measured)}
    return out


def _cells(by: dict, acts: list[str], interval: bool) -> str:
    def cell(a: str) -> str:
        if a not in by:
            return "–"
        v = by[a]
        text = f"{100 * v['pck20']:.1f}"
        return text + (f" [{100 * v['low']:.0f}, {100 * v['high']:.0f}]" if interval and "low" in v else "")
    return " | ".join(cell(a) for a in ["all", *acts])


def to_markdown(doc: dict) -> str:
    """Tables: one row per (predictor, split), one column per activity; test rows with their intervals."""
    acts = sorted({a for r in doc["rows"] for a in r["by_activity"] if a != "all"})
    head = "| predictor | split | all | " + " | ".join(a.replace("_", " ") for a in acts) + " |"
    sep = "|---|---|---|" + "---|" * len(acts)
    lines = ["# Held-out PCK@20 by activity", "",
             f"Made by `{doc['tool']}` on {doc['created'][:10]}. Clean windows of each checkpoint's own dataset and "
             "split; PCK@20 "
             "in %, a mean over windows; test rows with the 95 % interval from a bootstrap over recordings. The "
             "train subset is evenly spaced training windows (the memorisation check). `lookup` predicts the pose "
             "of the nearest clean training window (raw distance), `mean pose` the training mean."]
    merged = doc.get("merged")
    if merged:
        lines[-1] += (f" Rows of {', '.join(merged['new_labels'])} measured then; those of "
                      f"{', '.join(merged['earlier_labels']) or 'none'} and the earlier datasets kept from the "
                      f"document of {str(merged.get('earlier_created'))[:10]}.")
    lines += ["", head, sep]
    for r in doc["rows"]:
        epochs = f" ({r['epochs']} epochs)" if r.get("epochs") else ""
        lines.append(f"| {r['label']}{epochs} | {r['split']} | {_cells(r['by_activity'], acts, r['split'] == 'test')} |")
    for d in doc["datasets"]:
        which = ""
        if len(doc["datasets"]) > 1:
            which = f" ({d['fingerprint'][:8]})"
            if d.get("stride") and d.get("train_stride"):
                which = f" (training windows every {d['train_stride']} packets, the rest every {d['stride']})"
            elif d.get("stride"):
                which = f" (windows every {d['stride']} packets)"
        for r in d["rows"]:
            lines.append(f"| {r['predictor'].replace('_', ' ')}{which} | {r['split']} | "
                         f"{_cells(r['by_activity'], acts, r['split'] == 'test')} |")
    probe = doc.get("stride_probe")
    if probe:
        length = (f"{probe['window_packets']} packets ({probe['window_packets'] / probe['packet_rate_hz']:.2f} s)"
                  if probe.get("window_packets") and probe.get("packet_rate_hz") else "as recorded")
        lines += ["", "## The lookup against the training windows' stride", "",
                  f"The same recordings cut every {probe['stride']} packets; queries: the default's "
                  f"{probe['query_windows']:,} clean test windows (one every {probe['reference_stride']} packets); "
                  f"training windows every N packets. Window length {length}.", "",
                  "| training stride (packets) | training windows | all | " + " | ".join(a.replace("_", " ") for a in acts) + " |",
                  "|---|---|---|" + "---|" * len(acts)]
        for r in probe["rows"]:
            lines.append(f"| {r['train_stride_packets']} | {r['train_windows']:,} | {_cells(r['by_activity'], acts, True)} |")
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
    ap.add_argument("--merge", type=Path, default=None,
                    help="an earlier document to add these rows to (its other rows, datasets and probe are kept)")
    ap.add_argument("--relabel", action="append", default=[], metavar="OLD=NEW",
                    help="with --merge: rename an earlier label first (e.g. shipped='first v2 zoo')")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    relabel = dict(r.split("=", 1) for r in a.relabel if "=" in r)
    if len(relabel) != len(a.relabel) or (relabel and a.merge is None):
        ap.error("--relabel takes OLD=NEW and needs --merge")
    labels = a.label or list(a.checkpoints)
    if len(labels) != len(a.checkpoints):
        ap.error(f"{len(labels)} --label for {len(a.checkpoints)} checkpoints")
    from edgepose.io import atomic_path, write_json

    earlier = None
    if a.merge is not None:
        try:
            earlier = json.loads(a.merge.read_text())
        except (OSError, ValueError) as e:
            ap.error(f"--merge {a.merge}: cannot read it as JSON ({e})")
    doc = measure(a.checkpoints, labels, a.dense_data)
    if earlier is not None:
        try:
            doc = merge(earlier, doc, relabel)
        except ValueError as e:
            ap.error(f"--merge {a.merge}: {e}")
    write_json(a.out, doc)
    with atomic_path(a.out.with_suffix(".md")) as tmp:
        tmp.write_text(to_markdown(doc), encoding="utf-8")
    print(to_markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
