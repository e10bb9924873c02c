"""What the output-aware range search buys each module recipe: ΔPCK@20 with and without it, validation and test.

For each zoo model, exports its fp32 graph and, for each module recipe (``safe``, ``convs``,
``global``), its int8 PTQ graph twice from the same calibration windows and ranges: with
``--range-search off`` (the ranges as calibrated) and ``on`` (each activation's range searched
against the network output: :mod:`edgepose.quantization.range_search`). Every graph is scored on
the clean validation and test splits with ONNX Runtime on this CPU: ΔPCK@20 against the fp32
graph with the 95 % paired bootstrap interval over recordings, ΔMPJPE, and for the searched graph
the paired interval of searched − plain. Each pair is also checked for running the same kernels
(ONNX Runtime's optimised graphs of the two have the same operators), which is why its speed is
not timed here.

    python benchmarks/range_search.py --work runs/range-search --out benchmarks/results/range-search
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from common import clean_splits, paired_interval, timed_export, window_hits, write_results

RECIPES = ("safe", "convs", "global")
MODELS = ("wiflow-half", "wiflow-quarter", "wiflow-tiny")


def optimized_ops(path: Path) -> dict[str, int]:
    """Operator counts of ONNX Runtime's fully optimised CPU graph of ``path`` (the kernels that run)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        so.log_severity_level = 3
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        proto = onnx.load(so.optimized_model_filepath)
    return dict(sorted(collections.Counter(n.op_type for n in proto.graph.node).items()))


def measure_model(model: str, work: Path, threads: int, calib: str, recipes: tuple[str, ...]) -> dict:
    import edgepose as ep
    from edgepose.data import open_dataset
    from edgepose.metrics import mpjpe
    from edgepose.runtime.session import OrtRunner, ort_predict
    from edgepose.zoo import resolve_dataset

    ckpt = ep.load_checkpoint(model)
    ds = open_dataset(resolve_dataset(ckpt.card, None, "calibration"))
    torso = ds.layout.torso
    quiet = dict(out=work / model, log=lambda s: None, threads=threads)
    (fp32,) = ep.export(model, precision="fp32", **quiet)
    graphs, seconds = {}, {}
    for recipe in recipes:
        for mode in ("off", "on"):
            graphs[(recipe, mode)], seconds[(recipe, mode)] = timed_export(
                model, precision="int8", recipe=recipe, calib=calib, range_search=mode,
                **{**quiet, "out": work / model / mode})
    splits = []
    for split, x, y, recs in clean_splits(ds):

        def predict(path: Path) -> np.ndarray:
            runner = OrtRunner(path, threads=threads, parallel="batch")
            try:
                return ort_predict(runner, x)
            finally:
                runner.close()

        base = predict(fp32.path)
        base_hits = window_hits(base, y, torso)
        rows = []
        for recipe in recipes:
            plain_hits = None
            for mode in ("off", "on"):
                art = graphs[(recipe, mode)]
                pred = predict(art.path)
                hits = window_hits(pred, y, torso)
                row = {"recipe": recipe, "range_search": mode, "artifact": art.path.name,
                       "sha256": hashlib.sha256(art.path.read_bytes()).hexdigest(), "bytes": art.path.stat().st_size,
                       "export_s": seconds[(recipe, mode)], "vs_fp32": paired_interval(hits, base_hits, recs),
                       "delta_mpjpe": float(mpjpe(pred, y) - mpjpe(base, y))}
                if mode == "on":
                    row["vs_plain"] = paired_interval(hits, plain_hits, recs)
                    row["card"] = art.card["recipe"]["range_search"]
                plain_hits = hits
                rows.append(row)
        splits.append({"split": split, "windows": int(len(x)), "recordings": int(len(np.unique(recs))),
                       "fp32_pck20": float(base_hits.mean()), "rows": rows})
    kernels = {}
    for recipe in recipes:
        off, on = (optimized_ops(graphs[(recipe, m)].path) for m in ("off", "on"))
        kernels[recipe] = {"same": off == on, "off": off, "on": on}
    return {"model": model, "dataset": {"fingerprint": ds.fingerprint, "files": int(ds.n_files)},
            "fp32_sha256": hashlib.sha256(fp32.path.read_bytes()).hexdigest(), "splits": splits, "kernels": kernels}


def measure(models: tuple[str, ...], work: Path, threads: int, calib: str, recipes: tuple[str, ...]) -> dict:
    from edgepose.runtime.cpu import cpu_summary

    started = time.perf_counter()
    res = {"schema": "edgepose-range-search", "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "calibrator": calib, "threads": threads, "machine": cpu_summary(),
           "models": [measure_model(m, work, threads, calib, recipes) for m in models]}
    res["seconds"] = time.perf_counter() - started
    return res


def _ci(v: dict) -> str:
    return f"{v['delta_pp']:+.2f} [{v['low_pp']:+.2f}, {v['high_pp']:+.2f}]"


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [f"# Output-aware range search — calibrator {res['calibrator']}", "",
             f"Made by `benchmarks/range_search.py` on {res['created']}; CPU: {m.get('cpu_model')} "
             f"(flags {', '.join(f for f, on in m['cpu_flags'].items() if on)}); ONNX Runtime, {res['threads']} threads "
             f"(batch mode). ΔPCK@20 against the fp32 ONNX graph, 95 % paired bootstrap interval over recordings; "
             "*searched − plain* is the paired interval between the two int8 graphs of one recipe. Export time "
             "includes calibration and parity; the search is the difference (its own time is in the card).", ""]
    for mod in res["models"]:
        lines += [f"## {mod['model']}", ""]
        for s in mod["splits"]:
            lines += [f"### {s['split']}: {s['windows']} clean windows from {s['recordings']} recordings, fp32 PCK@20 "
                      f"{100 * s['fp32_pck20']:.2f} %", "",
                      "| recipe | range search | ΔPCK@20 (pp) [95 % CI] | half-width | ΔMPJPE | searched − plain (pp) "
                      "| ranges changed | output MSE before → after | export (s) |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for r in s["rows"]:
                v, card = r["vs_fp32"], r.get("card")
                gain = _ci(r["vs_plain"]) if "vs_plain" in r else "—"
                changed = f"{card['changed']} of {card['tensors']}" if card else "—"
                mse = f"{card['output_mse_before']:.2e} → {card['output_mse_after']:.2e}" if card else "—"
                lines.append(f"| {r['recipe']} | {r['range_search']} | {_ci(v)} | ±{v['half_width_pp']:.2f} | "
                             f"{r['delta_mpjpe']:+.5f} | {gain} | {changed} | {mse} | {r['export_s']:.0f} |")
            lines.append("")
        same = [f"{rec}: {'same operators' if k['same'] else 'DIFFERENT operators'}" for rec, k in mod["kernels"].items()]
        lines += [f"Kernels (ONNX Runtime's optimised graph, off vs on): {'; '.join(same)}.", ""]
    lines.append(f"Whole run: {res['seconds'] / 60:.1f} min.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES))
    ap.add_argument("--calib", default="percentile")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, required=True, help="export folder")
    ap.add_argument("--out", type=Path, required=True, help="results path without suffix (.json and .md are written)")
    args = ap.parse_args()
    res = measure(tuple(args.models), args.work, args.threads, args.calib, tuple(args.recipes))
    write_results(args.out, res, markdown(res))


if __name__ == "__main__":
    main()
