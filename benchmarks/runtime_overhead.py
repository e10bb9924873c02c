"""Edge runtime cost: overhead over a bare ONNX Runtime session, and a pinned one-core "small box" run.

Two measurements on ``.edgepose`` bundles (fp32 and int8 of the same model):

* **overhead** — ``Predictor.predict`` (validation + corruption rule + result object) and
  ``Predictor.stream`` (ring buffer, one pose per frame) against ``session.run`` on the *same*
  session, batch 1, one golden window. Paired calls: within a round every bare call is timed
  next to a runtime call (which goes first alternates), so load bursts from other jobs hit both;
  the figure is the median over rounds of (runtime median / bare median) − 1. Goal ≤ 5 %.
* **small box** — ``taskset -c 0 python -m edgepose.runtime verify BUNDLE --threads 1``: the
  runtime's own p50/p99 at batch 1 on one core and one thread, rounds alternating between the
  bundles, median over rounds.

Each measurement runs in a fresh process that imports only the runtime (no torch thread pool
competing). Without ``--bundles`` the script first builds them: a small synthetic dataset, the
model trained for one epoch (speed does not depend on the weights), fp32 and int8 PTQ exports,
``edgepose package``.

    python benchmarks/runtime_overhead.py --out benchmarks/results/runtime-bench.json
    python benchmarks/runtime_overhead.py --bundles a.edgepose b.edgepose --out results.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


# -- building the bundles (imports the whole toolkit) -------------------------------------------

def build_bundles(work: Path, model: str) -> list[Path]:
    from edgepose.data.synth import SynthConfig, synthesize
    from edgepose.deployment import package
    from edgepose.exporting import ExportRequest, export
    from edgepose.training import TrainConfig, fit

    quiet = dict(log=lambda s: None)
    data, run, art = work / "data", work / "run", work / "artifacts"
    if not data.exists():
        synthesize(data, SynthConfig(seed=3, subjects=2, activities=("walking", "squatting", "waving", "jumping"),
                                     takes=1, duration_s=2.0, stride=8, corrupt_windows_per_file=0))
    if not (run / "best.json").exists():
        fit(TrainConfig(model=model, epochs=1, batch_size=32, lr=1e-3, threads=2), data, run, progress=False, **quiet)
    bundles = []
    for precision, kw in (("fp32", {}), ("int8", {"calib": "percentile", "calib_count": 128})):
        found = sorted(art.glob(f"{model}.{precision}*.onnx"))
        if not found:
            found = export(ExportRequest(checkpoint=run, out=art, data=data, precision=precision,
                                         parity_windows=32, **kw, **quiet))
        out = work / f"{model}.{precision}.edgepose"
        if not out.exists():
            package(found[0], out, golden=8, **quiet)
        bundles.append(out)
    return bundles


# -- workers (runtime only) ---------------------------------------------------------------------

def _paired(bare, runtime, n: int, flip: bool) -> tuple[float, float]:
    """Medians (ms) of ``n`` bare and ``n`` runtime calls, interleaved call by call.

    Each bare call sits next to a runtime call, so a burst of load from other jobs hits both;
    which of the two goes first alternates within the round and between rounds.
    """
    a, b = np.empty(n), np.empty(n)
    pc = time.perf_counter
    for i in range(n):
        if (i + flip) % 2 == 0:
            t0 = pc(); bare(); t1 = pc(); runtime(); t2 = pc()  # noqa: E702
            a[i], b[i] = t1 - t0, t2 - t1
        else:
            t0 = pc(); runtime(); t1 = pc(); bare(); t2 = pc()  # noqa: E702
            b[i], a[i] = t1 - t0, t2 - t1
    return float(np.median(a)) * 1e3, float(np.median(b)) * 1e3


class _StubRunner:
    """Stands in for the predictor's ONNX Runtime runner: returns a fixed output, so what is timed is
    the runtime's own work alone."""

    def __init__(self, output: np.ndarray) -> None:
        self._out = output

    def run(self, _x):
        return self._out


def intrinsic_costs(pred, x: np.ndarray, frames: list) -> dict:
    """Best-of-repeats cost (µs) of the runtime's own work per call, with the model stubbed out:
    the figure an idle core approaches; the paired rounds show what this shared machine gives."""
    import timeit

    real = pred.runner
    pred.runner = _StubRunner(real.run(x))
    try:
        feed = (frames[i % len(frames)] for i in range(10**12))
        stream = pred.stream(feed, hop=1)
        next(stream)
        from edgepose.runtime.window import window_ok

        best = {}
        for name, fn in {"predict": lambda: pred.predict(x), "stream_per_frame": lambda: next(stream),
                         "corruption_check": lambda: window_ok(x)}.items():
            best[name + "_us"] = min(timeit.repeat(fn, number=500, repeat=7)) / 500 * 1e6
        return best
    finally:
        pred.runner = real


def worker_overhead(bundle: Path, threads: int, rounds: int, calls: int) -> dict:
    from edgepose.runtime import Predictor

    # intra mode: the bare call below is the same session's plain run on its intra-op pool
    pred = Predictor.load(bundle, threads=threads, parallel="intra")
    x = np.ascontiguousarray(pred.bundle.array("golden/inputs.npy")[:1], dtype=np.float32)
    frames = list(np.ascontiguousarray(pred.bundle.array("golden/inputs.npy")[0].T))
    feed = (frames[i % len(frames)] for i in range(10**12))
    stream = pred.stream(feed, hop=1)
    bare = lambda: pred.session.run(None, {pred.input_name: x})  # noqa: E731
    tiny = np.ones(8, dtype=np.float32)
    # control: one trivial numpy call (1 µs on a warm core) before the same bare call — what any
    # Python work between model calls costs on this machine
    variants = {"predict": lambda: pred.predict(x), "stream": lambda: next(stream),
                "control": lambda: (tiny.max(), bare())}
    next(stream)  # fills the ring; from here on every call pushes one frame and emits one pose
    for fn in variants.values():
        _paired(bare, fn, max(50, calls // 4), False)  # warm-up
    per = {k: {"bare": [], "runtime": []} for k in variants}
    for r in range(rounds):
        for k, fn in (variants.items() if r % 2 == 0 else reversed(variants.items())):
            a, b = _paired(bare, fn, calls, bool(r % 2))
            per[k]["bare"].append(a)
            per[k]["runtime"].append(b)
    out = {"bundle": bundle.name, "precision": pred.precision, "threads": threads, "rounds": rounds,
           "calls_per_round": calls, "intrinsic_best_us": intrinsic_costs(pred, x, frames), "round_median_ms": per}
    for k in variants:
        bare_ms, rt_ms = np.array(per[k]["bare"]), np.array(per[k]["runtime"])
        ratios = rt_ms / bare_ms
        out[k] = {"overhead_median_pct": float(100 * (np.median(ratios) - 1)),
                  "overhead_iqr_pct": [float(100 * (np.percentile(ratios, 25) - 1)),
                                       float(100 * (np.percentile(ratios, 75) - 1))],
                  "extra_us_median": float(np.median(rt_ms - bare_ms) * 1e3),
                  "bare_ms_median": float(np.median(bare_ms)), "runtime_ms_median": float(np.median(rt_ms))}
    return out


def _run_json(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def small_box(bundles: list[Path], rounds: int, seconds: float) -> dict:
    per: dict[str, list[dict]] = {b.name: [] for b in bundles}
    for r in range(rounds):
        for b in (bundles if r % 2 == 0 else bundles[::-1]):
            rep = _run_json(["taskset", "-c", "0", sys.executable, "-m", "edgepose.runtime", "verify", str(b),
                             "--threads", "1", "--seconds", str(seconds), "--json"])
            per[b.name].append({"passed": rep["passed"], **rep["latency"]})
    out = {}
    for name, runs in per.items():
        out[name] = {"p50_ms": float(np.median([x["p50_ms"] for x in runs])),
                     "p99_ms": float(np.median([x["p99_ms"] for x in runs])),
                     "rounds_p50_ms": [x["p50_ms"] for x in runs], "rounds_p99_ms": [x["p99_ms"] for x in runs],
                     "iters": [x["iters"] for x in runs], "verify_passed": all(x["passed"] for x in runs)}
    return out


def _loadavg() -> list[float] | None:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def write_markdown(doc: dict, path: Path) -> None:
    cpu = doc["machine"]
    flags = ", ".join(k for k, v in cpu["cpu_flags"].items() if v)
    lines = ["# Edge runtime: overhead and small-box latency", "",
             f"{doc['created']} · {cpu['cpu_model']} ({cpu['arch']}, {cpu['cpu_count']} logical cores; flags: {flags}) · "
             f"onnxruntime {doc['versions']['onnxruntime']} · load average at start {doc['loadavg_start']}, "
             f"at end {doc['loadavg_end']} (machine shared with other jobs)", "",
             f"Produced by `{doc['command']}`.", "",
             "## Overhead over a bare ONNX Runtime session (batch 1, same session, interleaved pairs)", "",
             "| bundle | threads | bare `session.run` | `predict` | overhead (median, IQR over rounds) | "
             "`stream` per frame | overhead (median, IQR) | control: one trivial numpy call + bare |",
             "|---|---|---|---|---|---|---|---|"]
    for o in doc["overhead"]:
        p, s = o["predict"], o["stream"]
        lines.append(f"| {o['bundle']} | {o['threads']} | {p['bare_ms_median']:.3f} ms | {p['runtime_ms_median']:.3f} ms | "
                     f"{p['overhead_median_pct']:+.1f} % [{p['overhead_iqr_pct'][0]:+.1f}, {p['overhead_iqr_pct'][1]:+.1f}] "
                     f"({p['extra_us_median']:+.1f} µs) | {s['runtime_ms_median']:.3f} ms | "
                     f"{s['overhead_median_pct']:+.1f} % [{s['overhead_iqr_pct'][0]:+.1f}, {s['overhead_iqr_pct'][1]:+.1f}] "
                     f"({s['extra_us_median']:+.1f} µs) | {o['control']['overhead_median_pct']:+.1f} % "
                     f"({o['control']['extra_us_median']:+.1f} µs) |")
    o0 = doc["overhead"][0]
    pred_pct = [o["predict"]["overhead_median_pct"] for o in doc["overhead"]]
    ctrl_pct = [o["control"]["overhead_median_pct"] for o in doc["overhead"]]
    own = [o["intrinsic_best_us"]["predict_us"] / (o["predict"]["bare_ms_median"] * 1e3) * 100 for o in doc["overhead"]]
    met = max(pred_pct) <= 5.0
    lines += ["", f"**Against the ≤ 5 % goal**: `predict` measured {min(pred_pct):+.1f} to {max(pred_pct):+.1f} % "
              f"({'met' if met else 'not met'} as measured on this machine). The control column — one trivial numpy "
              f"call before the same bare call — already costs {min(ctrl_pct):+.1f} to {max(ctrl_pct):+.1f} %: here, "
              "any Python work between two model calls runs on caches that the model call and other jobs' processes "
              "have just evicted. The runtime's own work (table below, model stubbed out, warm core) is "
              f"{min(own):.1f} to {max(own):.1f} % of a model call."]
    lines += ["", "The runtime's own work with the model stubbed out (best of 7 × 500 calls, µs; what an idle core "
              "approaches):", "", "| bundle | threads | `predict` | `stream` per frame | corruption check alone |",
              "|---|---|---|---|---|"]
    for o in doc["overhead"]:
        i = o["intrinsic_best_us"]
        lines.append(f"| {o['bundle']} | {o['threads']} | {i['predict_us']:.1f} | {i['stream_per_frame_us']:.1f} | "
                     f"{i['corruption_check_us']:.1f} |")
    lines += ["", f"{o0['rounds']} rounds × {o0['calls_per_round']} interleaved call pairs; figure = median over "
              "rounds of (runtime median / bare median) − 1, IQR over rounds in brackets; goal ≤ 5 %.", "",
              "## Small box: `taskset -c 0`, one thread (`python -m edgepose.runtime verify --threads 1`)", "",
              "| bundle | p50 | p99 | p50 per round | p99 per round | verify |", "|---|---|---|---|---|---|"]
    for name, s in doc["small_box"].items():
        lines.append(f"| {name} | {s['p50_ms']:.3f} ms | {s['p99_ms']:.3f} ms | "
                     f"{', '.join(f'{v:.3f}' for v in s['rounds_p50_ms'])} | "
                     f"{', '.join(f'{v:.3f}' for v in s['rounds_p99_ms'])} | {'PASS' if s['verify_passed'] else 'FAIL'} |")
    lines += ["", "p99 on this shared 2-core VM is dominated by other jobs' bursts; p50 is the stable figure."]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundles", type=Path, nargs="*", default=None, help="existing bundles (default: build them)")
    ap.add_argument("--work", type=Path, default=Path("runs/runtime-bench"), help="where built bundles go")
    ap.add_argument("--model", default="wiflow-half")
    ap.add_argument("--threads", default="1", help="comma-separated thread counts for the overhead rounds")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--box-rounds", type=int, default=3)
    ap.add_argument("--box-seconds", type=float, default=5.0)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--markdown-only", action="store_true", help="rewrite OUT's .md from the JSON in OUT")
    ap.add_argument("--worker", nargs=4, metavar=("BUNDLE", "THREADS", "ROUNDS", "CALLS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        b, t, r, c = args.worker
        print(json.dumps(worker_overhead(Path(b), int(t), int(r), int(c))))
        return

    if args.markdown_only:
        write_markdown(json.loads(args.out.read_text()), args.out.with_suffix(".md"))
        return
    bundles = args.bundles or build_bundles(args.work, args.model)
    import onnxruntime

    from edgepose.runtime.cpu import cpu_summary

    doc = {"schema": "edgepose-runtime-bench", "schema_version": 1,
           "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "command": "python benchmarks/runtime_overhead.py " + " ".join(sys.argv[1:]),
           "machine": {**cpu_summary(), "platform": platform.platform()},
           "versions": {"python": platform.python_version(), "numpy": np.__version__,
                        "onnxruntime": onnxruntime.__version__},
           "bundles": [b.name for b in bundles], "loadavg_start": _loadavg(), "overhead": []}
    for threads in (int(t) for t in args.threads.split(",")):
        for b in bundles:
            print(f"overhead: {b.name}, {threads} thread(s)", file=sys.stderr, flush=True)
            doc["overhead"].append(_run_json([sys.executable, __file__, "--out", os.devnull, "--worker", str(b),
                                              str(threads), str(args.rounds), str(args.calls)]))
    print("small box: taskset -c 0, 1 thread", file=sys.stderr, flush=True)
    doc["small_box"] = small_box(bundles, args.box_rounds, args.box_seconds)
    doc["loadavg_end"] = _loadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    write_markdown(doc, args.out.with_suffix(".md"))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
