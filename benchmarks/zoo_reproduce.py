"""Re-evaluate every pretrained zoo entry on its regenerated dataset and compare with its card.

For each ``models/*.json`` card: regenerate (or reuse from the cache) the synthetic dataset the
card records (:func:`edgepose.zoo.default_dataset`, fingerprint checked), check the split
fingerprint, load the weights (SHA-256 checked against the card), score the clean and full test
split and the mean-pose baseline exactly as the trainer did, and compare every figure with the
card's. A figure "reproduces" when it is equal to the card's as stored in JSON.

Usage:
    python3 benchmarks/zoo_reproduce.py --out benchmarks/results/zoo-reproduce.json
    python3 benchmarks/zoo_reproduce.py --cache /tmp/zoo-cache --models wiflow-tiny   (--threads N overrides the cards')
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from edgepose import zoo
from edgepose.data import SplitSpec, open_dataset
from edgepose.evaluation import score_splits, torch_predictor
from edgepose.runtime.cpu import cpu_summary
from edgepose.training import load_checkpoint


def card_threads(card: dict) -> int:
    """The torch thread count the card's metrics were computed with (its trainer's), 1 if unrecorded.

    Convolution kernels split their sums by thread, so the last digits of a float metric such as
    MPJPE depend on it; scoring with the trainer's count makes "reproduces" an exact comparison."""
    n = card.get("training", {}).get("hardware", {}).get("torch_threads")
    return int(n) if isinstance(n, int) and n > 0 else 1


def _flatten(d, prefix=""):
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix.rstrip(".")] = d
    return out


def compare(card_scores: dict, again: dict) -> dict:
    """Every numeric leaf of the card's test scores vs the recomputed ones."""
    a, b = _flatten(card_scores), _flatten(again)
    diffs = {}
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)):
            same = x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
            if not same:
                diffs[k] = {"card": x, "again": y, "abs_diff": abs(x - y)}
        elif x != y:
            diffs[k] = {"card": x, "again": y}
    return diffs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=None, help="dataset cache (default: $EDGEPOSE_CACHE or ~/.cache)")
    ap.add_argument("--models", nargs="*", default=None, help="zoo names (default: all)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads for every entry (default: each card's training thread count, so that "
                         "float sums are taken in the order the trainer took them)")
    args = ap.parse_args()
    entries = [e for e in zoo.list_pretrained() if not args.models or e.name in args.models]
    report = {"machine": cpu_summary(), "torch": torch.__version__, "models": [], "all_reproduce": True}
    for e in entries:
        t0 = time.perf_counter()
        cached = (zoo.cache_root(args.cache) / e.card["dataset"]["fingerprint"][:12] / "synth_meta.json").is_file()
        data = zoo.default_dataset(e.card, args.cache)
        t_data = time.perf_counter() - t0
        ds = open_dataset(data)
        model, card = load_checkpoint(e.path)
        threads = args.threads or card_threads(card)
        torch.set_num_threads(threads)
        spec = SplitSpec(card["split"]["seed"], tuple(card["split"]["fractions"]))
        split_ok = ds.split_fingerprint(spec) == card["split"]["fingerprint"]
        again = json.loads(json.dumps(score_splits(torch_predictor(model), ds, spec, splits=("test",))))
        diffs = {part: compare(card["metrics"]["test"][part], again["test"][part])
                 for part in ("clean", "full", "mean_pose")}
        ok = split_ok and not any(diffs.values())
        report["all_reproduce"] &= ok
        report["models"].append({
            "name": e.name, "path": str(e.path.relative_to(zoo.models_dir().parent)
                                        if e.path.is_relative_to(zoo.models_dir().parent) else e.path),
            "dataset_fingerprint": ds.fingerprint, "card_dataset_fingerprint": card["dataset"]["fingerprint"],
            "split_fingerprint_matches": split_ok,
            "test_pck20_card": card["metrics"]["test"]["clean"]["pck"]["0.2"],
            "test_pck20_again": again["test"]["clean"]["pck"]["0.2"],
            "mpjpe_card": card["metrics"]["test"]["clean"]["mpjpe"],
            "mpjpe_again": again["test"]["clean"]["mpjpe"],
            "torch_threads": threads, "reproduces": ok, "differences": diffs, "dataset_regenerated_now": not cached,
            "dataset_seconds": round(t_data, 1), "eval_seconds": round(time.perf_counter() - t0 - t_data, 1),
        })
        print(f"{e.name:16s} PCK@20 card {100 * report['models'][-1]['test_pck20_card']:.2f}%  "
              f"again {100 * report['models'][-1]['test_pck20_again']:.2f}%  "
              f"{'REPRODUCES' if ok else 'DIFFERS'}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    raise SystemExit(0 if report["all_reproduce"] else 1)


if __name__ == "__main__":
    main()
