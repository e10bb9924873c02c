"""The simplest paired speed measurement: ONNX Runtime sessions alternated in one process.

The cross-check for ``edgepose bench``'s paired ratios. All sessions are created up front in this
process; each round times every session for a fixed number of calls at each batch size (order
reversed every other round), and the round's ratio is ``median(first file) / median(file)`` —
> 1 means faster than the first file (the fp32 export). Reported: per-round medians and ratios,
and the median ratio with its inter-quartile range over the rounds. Sessions are built here with
plain ONNX Runtime calls (not edgepose's helpers), so the loop is independent of the harness;
``--spinning`` and ``--opt-level`` measure those session options as levers.

    python benchmarks/paired_loop.py fp32.onnx int8.onnx [more.onnx …] --threads 2 --rounds 5 \
        --calls 1=200,64=10 --data DIR --out benchmarks/results/paired_loop.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np

import onnxruntime as ort

from edgepose.runtime.cpu import cpu_summary

#: ONNX Runtime graph optimisation levels by name (``all`` is what edgepose uses everywhere).
OPT_LEVELS = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}


def session(path: Path, threads: int, spinning: bool, opt_level: str) -> ort.InferenceSession:
    """A CPU session built here, independent of edgepose's helpers (this script is the cross-check)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = OPT_LEVELS[opt_level]
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def parse_calls(text: str) -> dict[int, int]:
    """``"1=200,64=10"`` → ``{1: 200, 64: 10}`` (batch size → timed calls per round)."""
    out = {}
    for part in text.split(","):
        b, n = part.split("=")
        out[int(b)] = int(n)
    return out


def inputs_for(batches: list[int], shape: tuple[int, int], data: Path | None) -> dict[int, np.ndarray]:
    """Real clean test windows (repeated to fill a batch) when ``data`` is given, else uniform [0, 1) noise."""
    if data is None:
        rng = np.random.default_rng(0)
        return {b: rng.uniform(0, 1, (b, *shape)).astype(np.float32) for b in batches}
    from edgepose.data import open_dataset

    ds = open_dataset(data)
    idx = ds.indices("test", clean=True)
    return {b: ds.read(np.resize(idx, b))[0] for b in batches}


def median_ms(sess, feed: dict, calls: int, warmup: int) -> float:
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def run(paths: list[Path], threads: int, rounds: int, calls: dict[int, int], spinning: bool, data: Path | None,
        warmup: int = 3, opt_level: str = "all") -> dict:
    sessions = [session(p, threads, spinning, opt_level) for p in paths]
    name = sessions[0].get_inputs()[0].name
    shape = tuple(sessions[0].get_inputs()[0].shape[1:])
    feeds = {b: {name: x} for b, x in inputs_for(sorted(calls), shape, data).items()}
    per_round: dict[str, dict[str, list[float]]] = {p.name: {str(b): [] for b in calls} for p in paths}
    for r in range(rounds):
        order = list(range(len(paths))) if r % 2 == 0 else list(range(len(paths)))[::-1]
        for b, n in calls.items():
            for i in order:
                per_round[paths[i].name][str(b)].append(median_ms(sessions[i], feeds[b], n, warmup))
    base = paths[0].name
    ratios = {}
    for p in paths:
        ratios[p.name] = {}
        for b in map(str, calls):
            rr = np.asarray(per_round[base][b]) / np.asarray(per_round[p.name][b])
            q1, med, q3 = (float(np.percentile(rr, q)) for q in (25, 50, 75))
            ratios[p.name][b] = {"median": med, "q1": q1, "q3": q3, "min": float(rr.min()), "max": float(rr.max()),
                                 "rounds": rr.tolist()}
    return {"tool": "benchmarks/paired_loop.py", "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": cpu_summary(), "threads": threads, "spinning": spinning, "opt_level": opt_level,
            "rounds": rounds,
            "calls": {str(b): n for b, n in calls.items()}, "warmup": warmup,
            "inputs": "real clean test windows" if data else "uniform [0, 1) noise", "baseline": base,
            "median_ms": per_round, "speed_vs_baseline": ratios}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("onnx", nargs="+", type=Path, help="The first file is the baseline (fp32).")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", default="1=200,64=10", help="batch=calls per round, comma-separated")
    ap.add_argument("--spinning", action="store_true", help="let idle ORT threads busy-wait (default: off)")
    ap.add_argument("--data", type=Path, help="dataset for real test windows (default: uniform noise)")
    ap.add_argument("--opt-level", choices=sorted(OPT_LEVELS), default="all", help="graph optimisation level")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    res = run(a.onnx, a.threads, a.rounds, parse_calls(a.calls), a.spinning, a.data, opt_level=a.opt_level)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2) + "\n")
    for name, per_b in res["speed_vs_baseline"].items():
        print(f"{name:60s} " + "  ".join(f"b{b} {s['median']:.3f}× ({s['q1']:.3f}–{s['q3']:.3f})"
                                          for b, s in per_b.items()))


if __name__ == "__main__":
    main()
