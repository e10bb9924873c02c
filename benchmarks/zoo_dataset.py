"""The embedded default synthetic dataset: how long it takes to generate and what its split holds.

Generates the default set of a generator version (``edgepose data synth`` with no options) into a
fresh folder, timing it, then describes it: files and windows per split of the reference split
(seed 42, 70/15/15 by file), size on disk, the median dynamic-to-static power ratio, and how many
held-out recordings have their (activity, floor mark) performed in training by another subject
(the split tests generalisation, not memorisation, when that is all of them).

Usage:
    python3 benchmarks/zoo_dataset.py --out benchmarks/results/zoo-dataset-v2.json
    python3 benchmarks/zoo_dataset.py --version 1 --keep /tmp/v1   # keep the data
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from edgepose.data import open_dataset, split_files
from edgepose.data.synth import default_config, synthesize
from edgepose.data.synth.recording import mark_index
from edgepose.io import read_json, write_json
from edgepose.runtime.cpu import cpu_summary


def coverage(cfg) -> dict:
    """Held-out recordings whose (activity, mark) some other subject performs in training."""
    recs = cfg.recordings()
    train, val, test = split_files(len(recs))
    seen: dict = {}
    for f in train:
        s, a, k = recs[f]
        seen.setdefault((a, mark_index(cfg, s, a, k)), set()).add(s)
    train_subjects = {recs[f][0] for f in train}
    out = {}
    for name, files in (("val", val), ("test", test)):
        covered = [f for f in files if seen.get((recs[f][1], mark_index(cfg, *recs[f])), set()) - {recs[f][0]}]
        out[name] = {"recordings": len(files), "activity_mark_seen_by_another_subject": len(covered),
                     "subject_in_train": sum(recs[f][0] in train_subjects for f in files)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--version", type=int, default=None, help="generator version (default: the current one)")
    ap.add_argument("--keep", type=Path, default=None, help="write the data here and keep it")
    args = ap.parse_args()
    cfg = default_config("wiflow") if args.version is None else default_config("wiflow", args.version)
    tmp = None
    if args.keep is None:
        tmp = Path(tempfile.mkdtemp(prefix="zoo-dataset-"))
    target = args.keep or tmp / "data"
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    meta = synthesize(target, cfg, overwrite=True)
    seconds = time.perf_counter() - t0
    ds = open_dataset(target)
    split = ds.split()
    report = {
        "generator_version": meta["generator_version"], "config": meta["config"],
        "generation_seconds": round(seconds, 1), "load_average_at_start": round(load, 2),
        "machine": cpu_summary(), "threads_used": 1,
        "files": meta["files"], "windows": meta["windows"], "windows_per_file": meta["windows_per_file"],
        "train_windows_per_file": meta.get("train_windows_per_file", meta["windows_per_file"]),
        "bytes": sum(p.stat().st_size for p in target.iterdir() if p.is_file()),
        "dataset_fingerprint": ds.fingerprint, "split_fingerprint": ds.split_fingerprint(),
        "split": {name: {"files": len(files), "windows": int(len(ds.indices(name, clean=False))),
                         "clean_windows": int(len(ds.indices(name, clean=True)))} for name, files in split.items()},
        "coverage": coverage(cfg),
        "dynamic_to_static_db_median": meta["dynamic_to_static_db_median"],
        "corrupt_files": meta["corrupt_files"],
    }
    assert read_json(target / "synth_meta.json")["generator_version"] == report["generator_version"]
    if tmp is not None:
        shutil.rmtree(tmp)
    print(f"v{report['generator_version']}: {report['files']} recordings, {report['windows']:,} windows, "
          f"{report['bytes'] / 1e6:.0f} MB in {seconds:.1f} s; split files "
          + " / ".join(str(report["split"][n]["files"]) for n in ("train", "val", "test")))
    if args.out:
        write_json(args.out, report)


if __name__ == "__main__":
    main()
