"""``edgepose bench``: every artifact × every backend that can run it, measured the same way."""

from __future__ import annotations

import csv
import datetime as dt
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..data import SplitSpec, open_dataset
from ..errors import EdgeposeError
from ..evaluate import evaluate
from ..io import atomic_path, write_json
from ..metrics import pck_at
from .artifacts import Artifact, discover
from .backends import backends_for
from .machine import machine_info
from .timing import TimingPlan, measure

SCHEMA = "edgepose-bench"
SCHEMA_VERSION = 1


def bench(folder: Path, device: str = "cpu", batches: tuple[int, ...] = (1, 64), threads: int = 0,
          plan: TimingPlan = TimingPlan(), data: Path | None = None, accuracy: bool = True,
          log: Callable[[str], None] = print, isolate: bool = True, rounds: int = 1) -> dict:
    """Benchmark every artifact in ``folder`` on every ``device`` backend; returns the results document.

    Each (artifact, backend) pair runs in its own fresh (spawned) process unless ``isolate`` is
    off — scripts that call this must guard their entry point with ``if __name__ == "__main__"``. With
    ``rounds > 1`` every pair is timed that many times, rounds alternating in order, and each
    latency statistic is the median over rounds (accuracy is scored once).
    """
    artifacts = discover(folder)
    if not artifacts:
        raise EdgeposeError("no artifacts with cards found (expected *.safetensors, *.onnx or *.plan)", folder)
    ref = next((a for a in artifacts if a.kind == "torch"), None)
    card0 = (ref or artifacts[0]).card
    parent = card0 if ref else {}
    ds_path = data or Path((parent.get("dataset") or {}).get("path", ""))
    if accuracy and not str(ds_path):
        raise EdgeposeError("no dataset for the accuracy columns: pass --data", folder)
    ds = open_dataset(ds_path) if accuracy else None
    split = parent.get("split", {})
    spec = SplitSpec(split.get("seed", 42), tuple(split.get("fractions", (0.7, 0.15, 0.15))))
    idx = ds.indices("test", clean=True, spec=spec) if ds is not None else np.array([], dtype=np.int64)
    inputs = {}
    if ds is not None and len(idx):
        for b in batches:
            take = np.resize(idx, b)  # real test windows, repeated if the split is smaller than the batch
            inputs[b] = ds.read(take)[0]
    else:
        rng = np.random.default_rng(0)
        shape = tuple(card0.get("window_shape") or (card0["model_config"]["in_channels"], card0["model_config"]["window"]))
        inputs = {b: rng.uniform(0, 1, (b, *shape)).astype(np.float32) for b in batches}

    results = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION,
               "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "device": device, "threads": threads, "batches": list(batches), "timing_plan": asdict(plan),
               "rounds": rounds,
               "machine": machine_info(), "dataset": ds.describe() if ds is not None else None,
               "inputs": "real clean test windows" if ds is not None else "uniform random (no dataset)",
               "rows": [], "skipped": []}
    backends = backends_for(device)
    if device == "cuda" and results["machine"]["gpu"] is None:
        results["note"] = "no CUDA GPU on this machine: every CUDA backend is listed as skipped"
    jobs = []
    for art in artifacts:
        for be in backends:
            if not be.accepts(art):
                continue
            ok, reason = be.available()
            if not ok:
                results["skipped"].append({"artifact": art.path.name, "backend": be.name, "reason": reason})
                log(f"skip  {art.label:34s} on {be.name}: {reason}")
                continue
            jobs.append(_Job(art, be.name, device, threads, inputs, plan, ds_path if ds is not None else None, spec))
    rows: dict[int, list[dict]] = {}
    for rnd in range(rounds):
        # rows alternate direction from round to round, so slow spells of a shared machine fall
        # on different rows, and the median over rounds votes them out
        order = list(enumerate(jobs)) if rnd % 2 == 0 else list(enumerate(jobs))[::-1]
        for i, job in order:
            if i in rows and "skip" in rows[i][0]:
                continue
            job.score = rnd == 0
            row = _run_isolated(job) if isolate else _run_row(job)
            rows.setdefault(i, []).append(row)
    for i, job in enumerate(jobs):
        row = _merge_rounds(rows[i])
        if "skip" in row:
            results["skipped"].append(row["skip"])
            log(f"skip  {job.art.label:34s} on {job.backend}: {row['skip']['reason'][:120]}")
            continue
        results["rows"].append(row)
        lat = "  ".join(f"b{b} p50 {row['latency'][str(b)]['p50_ms']:.2f} ms" for b in inputs)
        acc = f"  PCK@20 {100 * pck_at(row['accuracy']['clean']['pck'], 0.2):.2f}%" if "accuracy" in row else ""
        log(f"bench {job.art.label:34s} on {job.backend:10s} {row['size_mb']:6.2f} MB  {lat}{acc}")
    _add_deltas(results)
    return results


@dataclass
class _Job:
    art: Artifact
    backend: str
    device: str
    threads: int
    inputs: dict
    plan: TimingPlan
    data: Path | None
    spec: SplitSpec
    score: bool = True


def _run_row(job: _Job) -> dict:
    """Load one artifact on one backend, time it at every batch size, score it."""
    be = next(b for b in backends_for(job.device) if b.name == job.backend)
    art = job.art
    try:
        runner = be.load(art, job.threads)
    except Exception as exc:  # a backend that cannot load an artifact is reported, not fatal
        return {"skip": {"artifact": art.path.name, "backend": be.name,
                         "reason": f"load failed: {type(exc).__name__}: {exc}"[:500]}}
    row = {"artifact": art.path.name, "label": art.label, "kind": art.kind, "precision": art.precision,
           "method": art.method, "target": art.card.get("target"), "backend": be.name,
           "bytes": art.bytes, "size_mb": art.bytes / 1e6, "size_mib": art.bytes / 2**20, "latency": {}}
    for b, x in job.inputs.items():
        row["latency"][str(b)] = measure(runner.prepare(x), runner.sync, b, job.plan)
    if job.data is not None and job.score:
        ds = open_dataset(job.data)
        acc = evaluate(runner.predict, ds, job.spec, splits=("test",))["test"]
        row["accuracy"] = {"clean": acc["clean"], "full": acc["full"], "mean_pose": acc["mean_pose"]}
    return row


def _merge_rounds(runs: list[dict]) -> dict:
    """One row from several rounds: each latency statistic is the median over rounds."""
    first = runs[0]
    if "skip" in first or len(runs) == 1:
        if "skip" not in first:
            for lat in first["latency"].values():
                lat["rounds_p50_ms"] = [lat["p50_ms"]]
        return first
    merged = dict(first)
    merged["latency"] = {}
    for b, lat in first["latency"].items():
        per = [r["latency"][b] for r in runs if "latency" in r]
        merged["latency"][b] = {k: (float(np.median([p[k] for p in per])) if isinstance(v, float) else v)
                                for k, v in lat.items()}
        merged["latency"][b]["iters"] = int(sum(p["iters"] for p in per))
        merged["latency"][b]["rounds_p50_ms"] = [p["p50_ms"] for p in per]
    return merged


def _run_isolated(job: _Job) -> dict:
    """:func:`_run_row` in a fresh process, so no runtime's thread pool (torch's OpenMP workers
    keep spinning after a call) competes with the next one's measurement."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(_run_row, job).result()


def _add_deltas(results: dict) -> None:
    """ΔPCK@t (percentage points) and latency ratios of each row versus the fp32 torch row."""
    ref = next((r for r in results["rows"] if r["kind"] == "torch"), None)
    if ref is None:
        return
    for r in results["rows"]:
        if "accuracy" in r and "accuracy" in ref:
            r["delta_pck_pp"] = {t: 100 * (r["accuracy"]["clean"]["pck"][t] - ref["accuracy"]["clean"]["pck"][t])
                                 for t in r["accuracy"]["clean"]["pck"]}
        r["speedup_vs_torch"] = {b: ref["latency"][b]["p50_ms"] / r["latency"][b]["p50_ms"]
                                 for b in r["latency"] if b in ref["latency"]}


def write_results(results: dict, out: Path) -> tuple[Path, Path]:
    """Write the JSON document and a flat CSV beside it."""
    write_json(out, results)
    csv_path = out.with_suffix(".csv")
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["artifact", "label", "backend", "size_mb", "batch", "p50_ms", "p90_ms", "p99_ms",
                    "throughput_wps", "pck10", "pck20", "pck30", "pck40", "pck50", "mpjpe", "full_pck20"])
        for r in results["rows"]:
            acc = r.get("accuracy", {})
            pck = acc.get("clean", {}).get("pck", {})
            for b, lat in r["latency"].items():
                w.writerow([r["artifact"], r["label"], r["backend"], f"{r['size_mb']:.4f}", b,
                            f"{lat['p50_ms']:.4f}", f"{lat['p90_ms']:.4f}", f"{lat['p99_ms']:.4f}",
                            f"{lat['throughput_windows_per_s']:.1f}",
                            *[f"{pck.get(t, float('nan')):.4f}" for t in (0.1, 0.2, 0.3, 0.4, 0.5)],
                            f"{acc.get('clean', {}).get('mpjpe', float('nan')):.5f}",
                            f"{acc.get('full', {}).get('pck', {}).get(0.2, float('nan')):.4f}"])
    return out, csv_path
