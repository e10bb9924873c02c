"""Where the default set's held-out accuracy comes from: PCK@20 per held-out recording, grouped by
what the training split covers of that recording.

Each recording of the synthetic default is one take of (subject, activity) on one of four floor
marks (drawn from the take's motion stream). A held-out take is *covered* when a training take
of the same subject and activity stands on the same mark, *style only* when training has the
same subject and activity on another mark, and *unseen* when no training take of that subject
and activity exists. For every checkpoint given (and a 1-nearest-neighbour lookup on
standardised flattened windows) this prints and writes PCK@20 per recording and per group.

Usage:
    python3 benchmarks/zoo_ceiling.py --data /tmp/synth-default models/wiflow-half.safetensors \
        --out benchmarks/results/zoo-ceiling.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from edgepose.data import SplitSpec, open_dataset
from edgepose.data.synth.recording import SynthConfig, mark_index
from edgepose.evaluation import torch_predictor
from edgepose.io import write_json
from edgepose.metrics import pck
from edgepose.training import load_checkpoint


def coverage(cfg: SynthConfig, split: dict) -> dict[int, str]:
    recs = cfg.recordings()
    mark = {f: mark_index(cfg, s, a, k) for f, (s, a, k) in enumerate(recs)}
    train = set(split["train"])
    out = {}
    for f in split["val"] + split["test"]:
        same = [g for g in train if recs[g][:2] == recs[f][:2]]
        out[f] = "covered" if any(mark[g] == mark[f] for g in same) else ("style only" if same else "unseen")
    return out


def _predict_all(predict, ds, idx, batch=256):
    out = []
    for s in range(0, len(idx), batch):
        x, _ = ds.read(idx[s : s + batch])
        out.append(predict(x))
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="*", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = open_dataset(args.data)
    meta = json.loads((args.data / "synth_meta.json").read_text())["config"]
    meta.pop("layout", None)
    cfg = SynthConfig(**{**meta, "activities": tuple(meta["activities"])})
    spec = SplitSpec()
    split = ds.split(spec)
    cov = coverage(cfg, split)
    tr = ds.indices("train", clean=True, spec=spec)
    xtr, ytr = ds.read(tr)
    mu, sd = xtr.mean((0, 2)), xtr.std((0, 2)) + 1e-6
    ftr = torch.from_numpy(((xtr - mu[None, :, None]) / sd[None, :, None]).reshape(len(xtr), -1))
    del xtr

    def knn(x):
        q = torch.from_numpy(((x - mu[None, :, None]) / sd[None, :, None]).reshape(len(x), -1))
        return ytr[torch.cdist(q, ftr).argmin(1).numpy()]

    predictors = {"1-NN (z-scored windows)": knn}
    for ck in args.checkpoints:
        model, card = load_checkpoint(ck)
        predictors[ck.stem] = torch_predictor(model)
    result: dict = {"dataset_fingerprint": ds.fingerprint, "recordings": [], "groups": {}}
    preds: dict = {name: {} for name in predictors}
    for part in ("val", "test"):
        idx = ds.indices(part, clean=True, spec=spec)
        gt = ds.keypoints[idx]
        for name, p in predictors.items():
            preds[name][part] = (_predict_all(p, ds, idx), gt, ds.window_file[idx])
    for part in ("val", "test"):
        for f in split[part]:
            row = {"split": part, "recording": ds.file_ids[f], "coverage": cov[f]}
            for name in predictors:
                pr, gt, wf = preds[name][part]
                m = wf == f
                row[name] = pck(pr[m], gt[m], (0.2,))[0.2]
            result["recordings"].append(row)
        for group in ("covered", "style only", "unseen"):
            fs = [f for f in split[part] if cov[f] == group]
            g = {"recordings": len(fs)}
            for name in predictors:
                pr, gt, wf = preds[name][part]
                m = np.isin(wf, fs)
                g["windows"] = int(m.sum())
                g[name] = pck(pr[m], gt[m], (0.2,))[0.2] if m.any() else None
            result["groups"][f"{part}/{group}"] = g
    for k, g in result["groups"].items():
        cells = "  ".join(f"{n}: {100 * v:5.1f}%" for n, v in g.items() if isinstance(v, float))
        print(f"{k:18s} {g['recordings']:2d} rec {g['windows']:5d} win  {cells}")
    if args.out:
        write_json(args.out, result)


if __name__ == "__main__":
    main()
