"""What bias correction buys each module recipe: ΔPCK@20 with and without it, on validation and test.

Exports a zoo model's fp32 graph and, for each module recipe (``safe``, ``convs``, ``global``), its
int8 PTQ graph twice — plain and with ``--bias-correction on`` (same calibration windows, same
ranges; only the convolutions' biases differ) — then scores every graph on the clean validation
and test splits with ONNX Runtime on this CPU. For each split and graph: ΔPCK@20 against the fp32
graph with the 95 % paired bootstrap interval over recordings (the statistic every edgepose row
uses), ΔMPJPE, and for the corrected graph the paired interval of corrected − plain.

    python benchmarks/bias_correction.py --model wiflow-half --work runs/bias-correction \\
        --out benchmarks/results/bias-correction-wiflow-half
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np

from common import clean_splits, paired_interval, timed_export, window_hits, write_results

RECIPES = ("safe", "convs", "global")


def measure(model: str, work: Path, threads: int, calib: str) -> dict:
    import edgepose as ep
    from edgepose.data import open_dataset
    from edgepose.metrics import mpjpe
    from edgepose.runtime.cpu import cpu_summary
    from edgepose.runtime.session import ort_predict, ort_session
    from edgepose.zoo import resolve_dataset

    ckpt = ep.load_checkpoint(model)
    ds = open_dataset(resolve_dataset(ckpt.card, None, "calibration"))
    torso = ds.layout.torso
    quiet = dict(out=work, log=lambda s: None)
    (fp32,) = ep.export(model, precision="fp32", **quiet)
    graphs, seconds = {}, {}
    for recipe in RECIPES:
        for corrected in (False, True):
            # ranges as calibrated (no range search), the graphs this comparison was first made on
            graphs[(recipe, corrected)], seconds[(recipe, corrected)] = timed_export(
                model, precision="int8", recipe=recipe, calib=calib, range_search="off",
                bias_correction="on" if corrected else "off", **quiet)
    splits = []
    for split, x, y, recs in clean_splits(ds):

        def predict(path: Path) -> np.ndarray:
            return ort_predict(ort_session(path, threads=threads), x)

        base = predict(fp32.path)
        base_hits = window_hits(base, y, torso)
        rows = []
        for recipe in RECIPES:
            plain_hits = None
            for corrected in (False, True):
                art = graphs[(recipe, corrected)]
                pred = predict(art.path)
                hits = window_hits(pred, y, torso)
                row = {"recipe": recipe, "bias_correction": corrected, "artifact": art.path.name,
                       "export_s": seconds[(recipe, corrected)],
                       "vs_fp32": paired_interval(hits, base_hits, recs),
                       "delta_mpjpe": float(mpjpe(pred, y) - mpjpe(base, y))}
                if corrected:
                    row["vs_plain"] = paired_interval(hits, plain_hits, recs)
                    row["card"] = art.card["recipe"]["bias_correction"]
                plain_hits = hits
                rows.append(row)
        splits.append({"split": split, "windows": int(len(x)), "recordings": int(len(np.unique(recs))),
                       "fp32_pck20": float(base_hits.mean()), "rows": rows})
    return {"schema": "edgepose-bias-correction", "created": dt.datetime.now(dt.timezone.utc).isoformat(
        timespec="seconds"), "model": model, "calibrator": calib, "threads": threads, "machine": cpu_summary(),
            "dataset": {"fingerprint": ds.fingerprint, "files": int(ds.n_files)}, "splits": splits}


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [f"# Bias correction — {res['model']}, calibrator {res['calibrator']}", "",
             f"Made by `benchmarks/bias_correction.py` on {res['created']}; CPU: {m.get('cpu_model')} "
             f"(flags {', '.join(f for f, on in m['cpu_flags'].items() if on)}); ONNX Runtime, {res['threads']} threads. ΔPCK@20 against "
             "the fp32 ONNX graph, 95 % paired bootstrap interval over recordings; *corrected − plain* is the paired "
             "interval between the two int8 graphs of one recipe.", ""]
    for s in res["splits"]:
        lines += [f"## {s['split']}: {s['windows']} clean windows from {s['recordings']} recordings, fp32 PCK@20 "
                  f"{100 * s['fp32_pck20']:.2f} %", "",
                  "| recipe | bias correction | ΔPCK@20 (pp) [95 % CI] | half-width | ΔMPJPE | corrected − plain (pp) |",
                  "|---|---|---|---|---|---|"]
        for r in s["rows"]:
            v = r["vs_fp32"]
            gain = r.get("vs_plain")
            gain_txt = f"{gain['delta_pp']:+.2f} [{gain['low_pp']:+.2f}, {gain['high_pp']:+.2f}]" if gain else "—"
            lines.append(f"| {r['recipe']} | {'yes' if r['bias_correction'] else 'no'} | {v['delta_pp']:+.2f} "
                         f"[{v['low_pp']:+.2f}, {v['high_pp']:+.2f}] | ±{v['half_width_pp']:.2f} | "
                         f"{r['delta_mpjpe']:+.5f} | {gain_txt} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="wiflow-half")
    ap.add_argument("--calib", default="percentile")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, required=True, help="export folder")
    ap.add_argument("--out", type=Path, required=True, help="results path without suffix (.json and .md are written)")
    args = ap.parse_args()
    res = measure(args.model, args.work, args.threads, args.calib)
    write_results(args.out, res, markdown(res))


if __name__ == "__main__":
    main()
