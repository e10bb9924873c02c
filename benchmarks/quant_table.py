"""The int8 comparison table: fp32, fp16, all-int8 PTQ, `safe` PTQ, `--max-drop 0.5`, QAT, the default, `checked`.

For each model of the zoo given (default ``wiflow-half`` and ``wiflow-tiny``) every artifact is
exported through ``edgepose.exporting`` from the shipped checkpoint on its default dataset, then:

* size (bytes on disk);
* PCK@20 on the clean test split and ΔPCK@20 against the fp32 ONNX graph with a paired bootstrap
  95 % interval over test *recordings* (``edgepose.stats.paired_bootstrap_delta``);
* p50 latency at batch 1 and 64, each artifact timed against the fp32 graph with the two ONNX
  Runtime sessions alternated in one process (``benchmarks/paired_loop.py``), and the paired
  speed ratio (> 1: faster than fp32).

"default (auto)" is what ``export --precision int8`` writes with no other option: the latency plan
(``--objective latency``, whole blocks, judged by the lower end of the validation interval) made on
this box at 2 threads, batch 1 and 64; "checked" is
``--recipe checked --threads 2``, the default before it (the first of ``guarded``, ``safe`` not slower
than fp32 here, no search).
"all-int8" is the accuracy guard's starting point: every group the target runs in int8
(convolutions, SiLU, residual adds, attention, pooling), i.e. ``--max-drop`` with a budget it
always meets.

    python benchmarks/quant_table.py --out benchmarks/results/quant-table [--models wiflow-half,wiflow-tiny]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np

from common import parse_calls, score_and_time, test_split, window_hits

ROWS = {  # row label → ExportRequest fields
    "fp32": dict(precision="fp32"),
    "fp16": dict(precision="fp16"),
    # the guard's start graph (every group int8), its ranges searched; the guard's default leaves them as calibrated
    "int8 PTQ all-int8": dict(precision="int8", max_drop=100.0, range_search="on"),
    "int8 PTQ all-int8 (ranges as calibrated)": dict(precision="int8", max_drop=100.0, range_search="off"),
    "int8 PTQ safe": dict(precision="int8", recipe="safe"),
    "int8 PTQ safe (ranges as calibrated)": dict(precision="int8", recipe="safe", range_search="off"),
    "int8 PTQ --max-drop 0.5": dict(precision="int8", max_drop=0.5, best_effort=True),
    "int8 PTQ --max-drop 0.5 (ranges searched)": dict(precision="int8", max_drop=0.5, best_effort=True,
                                                      range_search="on"),
    "int8 QAT safe": dict(precision="int8", method="qat", recipe="safe"),
    "int8 PTQ default (auto)": dict(precision="int8", threads=2),
    "int8 PTQ checked": dict(precision="int8", recipe="checked", threads=2),
}


def measure_model(name: str, work: Path, rows: list[str], threads: int, rounds: int, calls: dict[int, int],
                  qat_max_windows: int | None, log=print) -> dict:
    from edgepose.exporting import ExportRequest, export
    from edgepose.runtime.session import ort_predict, ort_session

    ckpt, data, ds, idx, x, y, recs = test_split(name)
    work.mkdir(parents=True, exist_ok=True)
    arts: dict[str, Path] = {}
    cards: dict[str, dict] = {}
    for row in rows:
        out = work / row.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "").replace("--", "")
        t0 = time.perf_counter()
        kw = dict(ROWS[row])
        if kw.get("method") == "qat" and qat_max_windows:
            kw["qat_max_windows"] = qat_max_windows
        existing = sorted(out.glob("*.onnx")) if out.is_dir() else []
        if existing:
            path = existing[0]
        else:
            (path,) = export(ExportRequest(checkpoint=ckpt, out=out, log=lambda s: log(f"    {s}"), **kw))
        arts[row] = path
        cards[row] = json.loads(path.with_name(path.name + ".json").read_text())
        if cards[row].get("recipe", {}).get("chosen"):  # auto (a plan) and checked say what they chose
            log(f"  {name} {row}: shipped {cards[row]['recipe']['chosen']}")
        log(f"  {name} {row}: {path.name} ({time.perf_counter() - t0:.0f} s)")
    torso = ds.layout.torso
    preds = {row: ort_predict(ort_session(p, threads=threads), x) for row, p in arts.items()}
    base = preds["fp32"]
    result = {"model": name, "checkpoint": str(ckpt), "dataset": str(data), "test_windows": int(len(idx)),
              "test_recordings": int(len(np.unique(recs))), "rows": []}
    base_hits = window_hits(base, y, torso)
    for row, path in arts.items():
        entry, ci = score_and_time(row, path, preds[row], base_hits, y, torso, recs, arts["fp32"], data, threads,
                                   rounds, calls)
        if "speed_vs_fp32" in entry:
            entry["speed_vs_fp32"] = {b: s["median"] for b, s in entry["speed_vs_fp32"].items()}
        for key in ("verified", "plan"):
            if key in cards[row]:
                rec = cards[row][key]
                entry[key] = {k: rec.get(k) for k in ("attempts", "machine", "seconds", "int8_groups", "float_groups",
                                                      "end_to_end") if k in rec}
        if cards[row].get("recipe", {}).get("chosen"):
            entry["chosen"] = cards[row]["recipe"]["chosen"]
        guard = cards[row].get("guard")
        if guard:
            entry["guard"] = {k: guard[k] for k in ("met", "best_effort", "float_groups", "validation", "test")}
        qat = cards[row].get("history")
        if qat:
            entry["qat_history"] = qat
        result["rows"].append(entry)
        log(f"  {row:28s} {entry['bytes'] / 1e6:6.2f} MB  PCK@20 {100 * entry['pck20']:.2f} %  "
            f"Δ {ci.delta_pp:+.2f} [{ci.low_pp:+.2f}, {ci.high_pp:+.2f}] pp")
    fp32_row = result["rows"][0]
    fp32_row["p50_ms"] = {b: float(np.median([r["fp32_p50_ms"][b] for r in result["rows"][1:]]))
                          for b in result["rows"][1]["fp32_p50_ms"]} if len(result["rows"]) > 1 else {}
    return result


def to_markdown(res: dict) -> str:
    m = res["machine"]
    lines = ["# int8 comparison: fp32, fp16, all-int8 PTQ, `safe` PTQ, `--max-drop 0.5`, QAT", "",
             f"Made by `benchmarks/quant_table.py` on {res['created']}; CPU: {m.get('cpu_model')} "
             f"({m.get('cpu_count')} logical cores, flags {', '.join(f for f, on in (m.get('cpu_flags') or {}).items() if on) or 'none'}); "
             f"{res['threads']} ONNX Runtime threads; each artifact timed against fp32 with two sessions alternated "
             f"in one process ({res['rounds']} rounds, calls per round {res['calls']}). ΔPCK@20: clean test split vs "
             "the fp32 ONNX graph, paired bootstrap 95 % CI over test recordings. Speed: paired median ratio, "
             "> 1 = faster than fp32.", ""]
    lines += [f"Note: {n}" for n in res.get("notes", [])] + ([""] if res.get("notes") else [])
    for model in res["models"]:
        lines += [f"## {model['model']}", "",
                  f"{model['test_windows']} clean test windows from {model['test_recordings']} recordings.", "",
                  "| artifact | size (MB) | PCK@20 (%) | ΔPCK@20 (pp) [95 % CI] | p50 b1 (ms) | p50 b64 (ms) | "
                  "speed b1 | speed b64 | float groups (guard) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in model["rows"]:
            d = r["delta_pck20"]
            p50 = r.get("p50_ms", {})
            sp = r.get("speed_vs_fp32", {})
            g = r.get("guard")
            gtxt = "—" if not g else (f"{len(g['float_groups'])}" + ("" if g["met"] else " (budget missed)"))
            speed = [f"{sp[b]:.2f}×" if b in sp else "1 (baseline)" for b in ("1", "64")]
            lines.append(f"| {r['row']} | {r['bytes'] / 1e6:.3f} | {100 * r['pck20']:.2f} | "
                         f"{d['delta_pp']:+.2f} [{d['low_pp']:+.2f}, {d['high_pp']:+.2f}] | "
                         f"{p50.get('1', float('nan')):.3f} | {p50.get('64', float('nan')):.2f} | "
                         f"{speed[0]} | {speed[1]} | {gtxt} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="wiflow-half,wiflow-tiny")
    ap.add_argument("--rows", default=";".join(ROWS), help="semicolon-separated row labels (default: all)")
    ap.add_argument("--work", type=Path, default=Path("runs/quant-table"), help="artifact folder (reused)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", default="1=100,64=5")
    ap.add_argument("--qat-max-windows", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/quant-table"))
    ap.add_argument("--markdown-only", action="store_true", help="rewrite OUT.md from OUT.json and stop")
    a = ap.parse_args()
    if a.markdown_only:
        a.out.with_suffix(".md").write_text(to_markdown(json.loads(a.out.with_suffix(".json").read_text())))
        return
    from edgepose.runtime.cpu import cpu_summary

    rows = [r for r in a.rows.split(";") if r]
    res = {"tool": "benchmarks/quant_table.py", "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "machine": cpu_summary(), "threads": a.threads, "rounds": a.rounds, "calls": a.calls, "models": []}
    for name in [m for m in a.models.split(",") if m]:
        res["models"].append(measure_model(name, a.work / name, rows, a.threads, a.rounds, parse_calls(a.calls),
                                           a.qat_max_windows))
    from edgepose.io import write_json

    write_json(a.out.with_suffix(".json"), json.loads(json.dumps(res, default=str)))
    a.out.with_suffix(".md").write_text(to_markdown(res))
    print(to_markdown(res))


if __name__ == "__main__":
    main()
