"""Nearest-neighbour probe of the default set's ceiling: how well can pose be looked up?

For every clean test (and validation) window, predict the mean pose of its k nearest clean
training windows (Euclidean distance on the flattened ``[540, 20]`` window, raw and per-channel
standardised, and on the window's per-channel time mean) and score it with the locked PCK@t.
Also scores the same lookup *within* the training split with the query's own recording
excluded (leave-one-recording-out), which shows how much of a window is recording identity.

Usage:
    python3 benchmarks/zoo_knn_probe.py --data /tmp/synth-default --out benchmarks/results/zoo-knn-probe.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from edgepose.data import SplitSpec, open_dataset
from edgepose.evaluation import baseline_scores
from edgepose.io import write_json
from edgepose.metrics import PoseMeter


def _features(x: np.ndarray, kind: str, mu=None, sd=None) -> np.ndarray:
    if kind == "raw":
        return x.reshape(len(x), -1)
    if kind == "zscore":
        return ((x - mu[None, :, None]) / sd[None, :, None]).reshape(len(x), -1)
    if kind == "time-mean":
        return ((x.mean(2) - mu[None]) / sd[None])
    raise ValueError(kind)


def knn(train_f: np.ndarray, query_f: np.ndarray, k: int, exclude: np.ndarray | None = None,
         train_groups: np.ndarray | None = None) -> np.ndarray:
    """Indices ``[n_query, k]`` of the nearest training rows (optionally excluding a group)."""
    tf = torch.from_numpy(train_f.astype(np.float32))
    out = []
    for s in range(0, len(query_f), 256):
        q = torch.from_numpy(query_f[s : s + 256].astype(np.float32))
        d = torch.cdist(q, tf)
        if exclude is not None:
            mask = torch.from_numpy(exclude[s : s + 256][:, None] == train_groups[None, :])
            d[mask] = float("inf")
        out.append(torch.topk(d, k, largest=False).indices.numpy())
    return np.concatenate(out)


def _score(ds, pred: np.ndarray, gt: np.ndarray) -> dict:
    m = PoseMeter(torso=ds.layout.torso, subsets={"end_effectors": ds.layout.end_effectors})
    m.update(pred, gt)
    r = m.compute()
    return {"pck20": r["pck"][0.2], "pck10": r["pck"][0.1], "pck50": r["pck"][0.5], "mpjpe": r["mpjpe"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    ds = open_dataset(args.data)
    spec = SplitSpec()
    tr, va, te = (ds.indices(s, clean=True, spec=spec) for s in ("train", "val", "test"))
    xtr, ytr = ds.read(tr)
    mu, sd = xtr.mean((0, 2)), xtr.std((0, 2)) + 1e-6
    mu_t, sd_t = xtr.mean(2).mean(0), xtr.mean(2).std(0) + 1e-6
    groups = ds.window_file[tr]
    results: dict = {"dataset_fingerprint": ds.fingerprint, "n_train": len(tr), "probes": []}
    for split, idx in (("val", va), ("test", te)):
        results[f"mean_pose_{split}_pck20"] = baseline_scores(ds, split, spec)["pck"][0.2]
    for kind in ("raw", "zscore", "time-mean"):
        stats = (mu_t, sd_t) if kind == "time-mean" else (mu, sd)
        ftr = _features(xtr, kind, *stats)
        for split, idx in (("val", va), ("test", te)):
            xq, yq = ds.read(idx)
            nn_idx = knn(ftr, _features(xq, kind, *stats), 10)
            for k in (1, 5, 10):
                pred = ytr[nn_idx[:, :k]].mean(1)
                results["probes"].append({"features": kind, "query": split, "k": k, **_score(ds, pred, yq)})
        # leave-one-recording-out inside train: same data, own recording hidden
        sub = np.arange(0, len(tr), 4)
        nn_idx = knn(ftr, ftr[sub], 10, exclude=groups[sub], train_groups=groups)
        for k in (1, 5, 10):
            pred = ytr[nn_idx[:, :k]].mean(1)
            results["probes"].append({"features": kind, "query": "train-LORO", "k": k, **_score(ds, pred, ytr[sub])})
        # ... and with the own recording visible (memorisation upper bound), self excluded
        nn_idx = knn(ftr, ftr[sub], 11)
        pred = ytr[nn_idx[:, 1:2]].mean(1)
        results["probes"].append({"features": kind, "query": "train-self-excluded", "k": 1, **_score(ds, pred, ytr[sub])})
    results["seconds"] = round(time.perf_counter() - t0, 1)
    for p in results["probes"]:
        print(f"{p['features']:10s} {p['query']:20s} k={p['k']:2d}  PCK@20 {100 * p['pck20']:6.2f}%  MPJPE {p['mpjpe']:.4f}")
    print(f"mean pose: val {100 * results['mean_pose_val_pck20']:.2f}%  test {100 * results['mean_pose_test_pck20']:.2f}%")
    if args.out:
        write_json(args.out, results)


if __name__ == "__main__":
    main()
