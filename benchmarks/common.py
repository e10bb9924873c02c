"""What the benchmark scripts share: the zoo model's test split, per-window PCK hits, the paired loop.

Scripts run as ``python benchmarks/NAME.py`` and import this module as ``common`` (the script's
folder is first on ``sys.path``); no script loads another by file path or calls another's
private helpers.

The paired loop is the simplest paired speed measurement: ONNX Runtime sessions alternated in one
process. All sessions are created up front; each round times every session for a fixed number of
calls at each batch size (order reversed every other round), and the round's ratio is
``median(first file) / median(file)`` — > 1 means faster than the first file (the fp32 export).
Sessions are built with plain ONNX Runtime calls (not edgepose's helpers), so the loop is
independent of the harness it cross-checks.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgepose.runtime.cpu import cpu_summary


def window_hits(pred: np.ndarray, gt: np.ndarray, torso: tuple[int, int]) -> np.ndarray:
    """Fraction of joints within PCK@20 per window."""
    from edgepose.metrics import window_pck

    return window_pck(pred, gt, 0.2, torso)


def paired_interval(a: np.ndarray, b: np.ndarray, recordings: np.ndarray) -> dict:
    """``mean(a) − mean(b)`` of per-window PCK hits in pp with the 95 % paired bootstrap interval over recordings."""
    from edgepose.stats import paired_bootstrap_delta

    ci = paired_bootstrap_delta(a, b, recordings)
    return {"delta_pp": ci.delta_pp, "low_pp": ci.low_pp, "high_pp": ci.high_pp,
            "half_width_pp": (ci.high_pp - ci.low_pp) / 2}


def write_results(out: Path, res: dict, markdown: str) -> None:
    """``out.json`` and ``out.md`` (atomically), then the Markdown on stdout."""
    from edgepose.io import atomic_path, write_json

    write_json(out.with_suffix(".json"), res)
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text(markdown + "\n")
    print(markdown)


def timed_export(model, **options):
    """``ep.export`` of one artifact: ``(artifact, wall seconds)``."""
    import edgepose as ep

    t0 = time.perf_counter()
    (art,) = ep.export(model, **options)
    return art, time.perf_counter() - t0


def clean_splits(ds, splits: tuple[str, ...] = ("val", "test")):
    """``(split, x, y, recordings)`` of each split's clean windows, read once."""
    for split in splits:
        idx = ds.indices(split, clean=True)
        x, y = ds.read(idx)
        yield split, x, y, ds.window_file[idx]


def test_split(name: str):
    """A zoo model's checkpoint, its default dataset and the clean test split it is scored on.

    Returns ``(checkpoint, data, dataset, idx, x, y, recordings)``; shared by the benchmark scripts.
    """
    import edgepose as ep
    from edgepose.data import open_dataset
    from edgepose.zoo import resolve_checkpoint, resolve_dataset

    ckpt = resolve_checkpoint(name)
    data = resolve_dataset(ep.load_checkpoint(name).card, None, "calibration")
    ds = open_dataset(data)
    idx = ds.indices("test", clean=True)
    x, y = ds.read(idx)
    return ckpt, data, ds, idx, x, y, ds.window_file[idx]


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
    """Median milliseconds of ``calls`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def run_paired(paths: list[Path], threads: int, rounds: int, calls: dict[int, int], spinning: bool, data: Path | None,
        warmup: int = 3, opt_level: str = "all") -> dict:
    """Time ``paths`` alternated in one process for ``rounds`` rounds; ratios against the first file."""
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


def score_and_time(row: str, path: Path, pred: np.ndarray, base_hits: np.ndarray, y: np.ndarray, torso: tuple[int, int],
                   recs: np.ndarray, fp32: Path, data: Path, threads: int, rounds: int,
                   calls: dict[int, int]) -> tuple[dict, object]:
    """One table row: size, PCK@20 and its paired ΔPCK@20 interval over recordings, and (for all but
    the fp32 file) p50s and the speed ratio to fp32 from the paired loop. Returns ``(row, interval)``;
    ``row["speed_vs_fp32"]`` is batch → the ratio's summary (median, quartiles, rounds)."""
    from edgepose.stats import paired_bootstrap_delta

    hits = window_hits(pred, y, torso)
    ci = paired_bootstrap_delta(hits, base_hits, recs)
    entry = {"row": row, "file": path.name, "bytes": path.stat().st_size, "pck20": float(hits.mean()),
             "delta_pck20": ci.to_dict()}
    if path != fp32:
        t = run_paired([fp32, path], threads, rounds, calls, False, data)
        entry["p50_ms"] = {b: float(np.median(v)) for b, v in t["median_ms"][path.name].items()}
        entry["fp32_p50_ms"] = {b: float(np.median(v)) for b, v in t["median_ms"][fp32.name].items()}
        entry["speed_vs_fp32"] = dict(t["speed_vs_baseline"][path.name])
    return entry, ci
