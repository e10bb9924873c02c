"""The latency-objective int8 plan against fp32, all-int8, `safe` and peer quantizers, on this machine.

For each zoo model given, every artifact is exported from the shipped checkpoint (its default
dataset), then measured exactly like ``benchmarks/quant_table.py`` does:

* size on disk; PCK@20 on the clean test split and ΔPCK@20 against the fp32 ONNX graph with a
  paired bootstrap 95 % interval over test recordings;
* p50 at batch 1 and 64, each artifact alternated with the fp32 graph in one process
  (``benchmarks/paired_loop.py``), and the paired speed ratio (> 1 = faster than fp32).

Rows: fp32; all-int8 (every group the target runs in int8); ``safe``; ``--objective latency``
(``--max-drop 0.5``, batches 1 and 64, the given threads, no profile cache so the search time is
real); the default ``export --precision int8`` (``auto``: the latency plan under the lower end of
the validation interval, same threads, no profile cache); and, when their packages are installed, NNCF and ModelOpt PTQ of the same fp32 ONNX with
the same 512 calibration windows. ``--exhaustive`` also checks the search against brute force
over the 8 blocks whose flip matters most (the others fixed as the plan has them).

    python benchmarks/precision_plan.py --models wiflow-half --threads 2 --exhaustive wiflow-tiny
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import time
from pathlib import Path

import numpy as np

from common import parse_calls, score_and_time, test_split, window_hits

#: the row whose plan ``--exhaustive`` checks against brute force (its card is under ``int8_objective_latency``)
EXHAUSTIVE_ROW = "int8 --objective latency"


def rows(threads: int) -> dict[str, dict]:
    return {
        "fp32": dict(precision="fp32"),
        "int8 all-int8": dict(precision="int8", max_drop=100.0, range_search="off"),
        # ranges as calibrated here and in all-int8, as in the committed plan tables (made before the range search
        # was the default)
        "int8 safe": dict(precision="int8", recipe="safe", range_search="off"),
        "int8 --objective latency": dict(precision="int8", objective="latency", max_drop=0.5, batches=(1, 64),
                                         threads=threads, profile_cache=False),
        # `export --precision int8` with no other option: the latency plan judged by the lower end of
        # the validation interval, or the fp32 graph when nothing pays
        "int8 default (auto)": dict(precision="int8", threads=threads, profile_cache=False),
    }


def peer_nncf(fp32: Path, out: Path, calib: np.ndarray) -> Path:
    """NNCF post-training quantization of the fp32 ONNX graph (its defaults, our calibration windows)."""
    import nncf
    import onnx

    ds = nncf.Dataset(list(calib), lambda w: {"csi": w[None].astype(np.float32)})
    q = nncf.quantize(onnx.load(str(fp32)), ds, subset_size=len(calib))
    path = out / f"{fp32.name.split('.')[0]}.int8-nncf.onnx"
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(q, str(path))
    return path


def peer_modelopt(fp32: Path, out: Path, calib: np.ndarray) -> Path:
    """NVIDIA ModelOpt ONNX PTQ (int8, its default max calibration) of the same graph."""
    from modelopt.onnx.quantization import quantize

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{fp32.name.split('.')[0]}.int8-modelopt.onnx"
    quantize(str(fp32), quantize_mode="int8", calibration_data={"csi": calib.astype(np.float32)},
             output_path=str(path), calibration_eps=["cpu"], high_precision_dtype="fp32")
    return path


def make_peers(name: str, work: Path, modules: list[str], log=print) -> None:
    """Only write the peer artifacts into ``work`` (for a peer installed in another environment).

    ModelOpt pins other onnx/onnxruntime versions than edgepose's, so it lives in its own virtual
    environment: run the table once in edgepose's environment (it saves the calibration windows),
    then this there (``--make-peers modelopt``), then the table again (it reuses every artifact).
    """
    path = work / "calibration-512.npy"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run the table once in edgepose's environment first")
    calib = np.load(path)  # the same 512 windows edgepose calibrates with, saved by measure()
    fp32 = sorted((work / "fp32").glob("*.onnx"))[0]
    for row, (module, make) in PEERS.items():
        if module in modules:
            log(f"  {name} {row}: {make(fp32, work / module, calib)}")


PEERS = {"NNCF 3.x PTQ": ("nncf", peer_nncf), "ModelOpt ONNX PTQ": ("modelopt", peer_modelopt)}


def measure(name: str, work: Path, threads: int, rounds: int, calls: dict[int, int], log=print) -> dict:
    from edgepose.data import SplitSpec
    from edgepose.exporting import ExportRequest, export
    from edgepose.quantization.calibration import CalibrationSet
    from edgepose.runtime.session import ort_predict, ort_session

    ckpt, data, ds, idx, x, y, recs = test_split(name)
    arts: dict[str, Path] = {}
    cards: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    for row, kw in rows(threads).items():
        out = work / row.replace(" ", "_").replace("-", "")
        existing = sorted(out.glob("*.onnx")) if out.is_dir() else []
        t0 = time.perf_counter()
        if existing:
            path = existing[0]
        else:
            (path,) = export(ExportRequest(checkpoint=ckpt, out=out, log=lambda s: log(f"    {s}"), **kw))
        seconds[row] = time.perf_counter() - t0
        arts[row], cards[row] = path, json.loads(path.with_name(path.name + ".json").read_text())
        log(f"  {name} {row}: {path.name} ({seconds[row]:.0f} s)")
    calib = CalibrationSet.from_dataset(ds, 512, 0, SplitSpec(), tuple(ds.window_shape)).windows
    np.save(work / "calibration-512.npy", calib)  # for peers made in another environment (make_peers)
    for row, (module, make) in PEERS.items():
        out = work / module
        existing = sorted(out.glob("*.onnx")) if out.is_dir() else []
        if not existing and importlib.util.find_spec(module) is None:
            log(f"  {row}: {module} not installed and no artifact in {out}, skipped")
            continue
        try:
            arts[row] = existing[0] if existing else make(arts["fp32"], out, calib)
            cards[row] = {}
            log(f"  {name} {row}: {arts[row].name}")
        except Exception as exc:  # a peer's failure is a result, not a crash of the table
            log(f"  {row}: failed: {type(exc).__name__}: {exc}")
    torso = ds.layout.torso
    preds = {row: ort_predict(ort_session(p, threads=threads), x) for row, p in arts.items()}
    base_hits = window_hits(preds["fp32"], y, torso)
    res = {"model": name, "test_windows": int(len(idx)), "test_recordings": int(len(np.unique(recs))), "rows": []}
    for row, path in arts.items():
        entry, ci = score_and_time(row, path, preds[row], base_hits, y, torso, recs, arts["fp32"], data, threads,
                                   rounds, calls)
        plan = cards[row].get("plan")
        if plan:
            entry["plan"] = {k: plan[k] for k in ("int8_groups", "float_groups", "end_to_end", "validation", "notes",
                                                   "search", "seconds", "threads", "runtime")}
            if plan.get("layout"):  # the padded-layout step (plans made since it exists)
                entry["plan"]["layout"] = plan["layout"]
            entry["export_seconds"] = seconds[row]
        res["rows"].append(entry)
        sp = entry.get("speed_vs_fp32", {})
        log(f"  {row:26s} {entry['bytes'] / 1e6:6.2f} MB  PCK@20 {100 * entry['pck20']:.2f} %  "
            f"Δ {ci.delta_pp:+.2f} [{ci.low_pp:+.2f}, {ci.high_pp:+.2f}] pp  "
            + "  ".join(f"b{b} {s['median']:.2f}×" for b, s in sp.items()))
    return res


def exhaustive_check(name: str, plan_card: dict, threads: int, seconds: float, k: int = 8, log=print) -> dict:
    """Brute force over the ``k`` most consequential blocks, the rest as the plan has them."""
    import tempfile

    from edgepose.timing.adapters import get_adapter
    from edgepose.exporting import ExportRequest, load_context
    from edgepose.quantization.planning.search import block_units, exhaustive, objective
    from edgepose.quantization.planning.timer import GraphTimer, batch_inputs

    plan = plan_card["plan"]
    batches = [int(b) for b in plan["batches"]]
    allowed = plan["allowed_by_guard"]
    gains = {layer["name"]: layer["int8_gain_us"] or {} for layer in plan["layers"]}
    units = block_units(allowed)
    weight = {u.name: sum(abs(v) for g in u.groups for v in gains.get(g, {}).values()) for u in units}
    chosen = sorted(units, key=lambda u: -weight[u.name])[:k]
    fixed = frozenset(plan["int8_groups"]) - {g for u in chosen for g in u.groups}
    with tempfile.TemporaryDirectory() as tmp:
        ctx = load_context(ExportRequest(checkpoint=name, out=Path(tmp), precision="int8", log=lambda s: None),
                           Path(tmp))
        probe = ctx.probe()
        timer = GraphTimer(probe.graph_bytes, get_adapter("onnxruntime"), threads, batch_inputs(probe.x, batches),
                           seconds=seconds)
        t0 = time.perf_counter()
        results = exhaustive(chosen, timer, batches, fixed)

        def retime(cfg: frozenset) -> tuple[float, frozenset, dict]:
            m = timer(cfg, frozenset(), seconds=4 * seconds)
            rel = {b: m[b][0] / m[b][1] for b in batches}
            return objective(rel), cfg, rel

        # the best of 256 noisy timings is biased low (winner's curse): re-time the five best and
        # the plan, longer, against fp32, before comparing
        retimed = [retime(cfg) for _, cfg, _ in results[:5]]
        _, _, plan_rel = retime(frozenset(plan["int8_groups"]))
    best = min(retimed, key=lambda r: r[0])
    plan_rank = sum(1 for r in retimed if r[0] < objective(plan_rel))
    out = {"model": name, "blocks": [u.name for u in chosen], "subsets": len(results),
           "seconds": time.perf_counter() - t0, "best_blocks_int8": [u.name for u in chosen if set(u.groups) <= best[1]],
           "best_speedup": {str(b): 1 / r for b, r in best[2].items()},
           "plan_speedup": {str(b): 1 / r for b, r in plan_rel.items()},
           "first_pass_best_speedup": {str(b): 1 / r for b, r in results[0][2].items()},
           "plan_objective_over_best": objective(plan_rel) / best[0], "retimed_better_than_plan": plan_rank}
    log(f"  exhaustive over {len(results)} subsets of {k} blocks: best "
        + ", ".join(f"b{b} {v:.2f}×" for b, v in out["best_speedup"].items()) + "; plan "
        + ", ".join(f"b{b} {v:.2f}×" for b, v in out["plan_speedup"].items())
        + f"; {plan_rank} of the 5 re-timed best subsets measured better than the plan")
    return out


def to_markdown(res: dict) -> str:
    m = res["machine"]
    flags = ", ".join(f for f, on in (m.get("cpu_flags") or {}).items() if on) or "none"
    lines = ["# Latency-objective int8 plan vs fp32, all-int8, `safe` and peers", "",
             f"Made by `benchmarks/precision_plan.py` on {res['created']}. CPU: {m.get('cpu_model')} "
             f"({m.get('cpu_count')} logical cores; flags {flags}). {res['threads']} ONNX Runtime threads "
             f"(onnxruntime {res['onnxruntime']}). Each artifact alternated with the fp32 graph in one process "
             f"({res['rounds']} rounds, calls per round {res['calls']}); speed = paired median ratio (> 1: faster "
             "than fp32) with the rounds' min–max. ΔPCK@20: clean test split vs the fp32 ONNX graph, paired "
             "bootstrap 95 % CI over test recordings. Each plan is chosen on validation and timed on this machine "
             "by its export; the table re-times it independently.", ""]
    for model in res["models"]:
        lines += [f"## {model['model']}", "",
                  f"{model['test_windows']} clean test windows from {model['test_recordings']} recordings.", "",
                  "| artifact | size (MB) | PCK@20 (%) | ΔPCK@20 (pp) [95 % CI] | p50 b1 (ms) | p50 b64 (ms) | "
                  "speed b1 [min–max] | speed b64 [min–max] |", "|---|---|---|---|---|---|---|---|"]
        for r in model["rows"]:
            d, p50, sp = r["delta_pck20"], r.get("p50_ms", {}), r.get("speed_vs_fp32", {})
            cell = [f"{sp[b]['median']:.2f}× [{sp[b]['min']:.2f}–{sp[b]['max']:.2f}]" if b in sp else "1 (baseline)"
                    for b in ("1", "64")]
            if not p50:
                p50 = {b: float(np.median([x["fp32_p50_ms"][b] for x in model["rows"] if "fp32_p50_ms" in x]))
                       for b in ("1", "64")}
            lines.append(f"| {r['row']} | {r['bytes'] / 1e6:.3f} | {100 * r['pck20']:.2f} | {d['delta_pp']:+.2f} "
                         f"[{d['low_pp']:+.2f}, {d['high_pp']:+.2f}] | {p50['1']:.3f} | {p50['64']:.2f} | "
                         f"{cell[0]} | {cell[1]} |")
        for r in model["rows"]:
            if "plan" in r:
                p = r["plan"]
                lines += ["", f"Plan of `{r['row']}`: {len(p['int8_groups'])} of {len(p['int8_groups']) + len(p['float_groups'])} "
                          f"groups int8; search {p['search'].get('evaluations')} paired comparisons in "
                          f"{p['search'].get('seconds', 0):.0f} s, whole export {p.get('seconds', r['export_seconds']):.0f} s "
                          f"(accuracy scan, guard, search, verification); validation ΔPCK@20 "
                          f"{p['validation']['delta_pck20_pp']:+.2f} pp. Float groups: "
                          + (", ".join(f"`{g}`" for g in p["float_groups"]) or "none") + "."]
                lay = p.get("layout")
                if lay:
                    lines += [f"Layout: {lay['chosen']} (searched in {lay['searched_in']}; padded vs unpadded "
                              + ", ".join(f"b{b} {v['speedup']:.2f}×" for b, v in lay["padded_vs_unpadded"].items()) + ")."]
                lines += [f"Note: {n}" for n in p["notes"]]
        ex = model.get("exhaustive")
        if ex:
            lines += ["", f"Brute force over every subset of the {len(ex['blocks'])} most consequential blocks "
                      f"({', '.join(ex['blocks'])}; {ex['subsets']} graphs each timed against fp32, the other groups "
                      f"as the plan has them, {ex['seconds']:.0f} s). The five best were re-timed 4× longer with the "
                      "plan (the best of 256 short timings is biased): best "
                      + ", ".join(f"b{b} {v:.2f}×" for b, v in ex["best_speedup"].items())
                      + f" (int8 blocks: {', '.join(ex['best_blocks_int8']) or 'none'}); the plan "
                      + ", ".join(f"b{b} {v:.2f}×" for b, v in ex["plan_speedup"].items())
                      + f" — objective {ex['plan_objective_over_best']:.3f}× the best's "
                      f"(> 1: the plan is slower); {ex['retimed_better_than_plan']} of the 5 re-timed subsets beat "
                      "it."]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="wiflow-half")
    ap.add_argument("--exhaustive", default="", help="comma-separated models to check against brute force")
    ap.add_argument("--work", type=Path, default=Path("runs/precision-plan"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", default="1=200,64=10")
    ap.add_argument("--out", type=Path, default=None, help="results stem (default benchmarks/results/precision-plan-<cpu>)")
    ap.add_argument("--markdown-only", action="store_true")
    ap.add_argument("--make-peers", default="", help="comma-separated peer packages (nncf, modelopt): only write "
                    "their artifacts into the work folders of --models (run where the package is installed)")
    ap.add_argument("--exhaustive-only", action="store_true",
                    help="rerun only the brute-force check of --exhaustive models, from the plans already in --work, "
                         "into the existing results file")
    a = ap.parse_args()
    import onnxruntime

    from edgepose.runtime.cpu import cpu_summary

    tag = "-".join(cpu_summary()["cpu_model"].lower().replace("(r)", "").split()[:3])
    out = a.out or Path("benchmarks/results") / f"precision-plan-{tag}-{a.threads}t"
    if a.markdown_only:
        out.with_suffix(".md").write_text(to_markdown(json.loads(out.with_suffix(".json").read_text())))
        return
    if a.make_peers:
        for name in [m for m in a.models.split(",") if m]:
            make_peers(name, a.work / f"{name}-{a.threads}t", a.make_peers.split(","))
        return
    if a.exhaustive_only:
        res = json.loads(out.with_suffix(".json").read_text())
        for model in res["models"]:
            if model["model"] in a.exhaustive.split(","):
                plan_row = next(r for r in model["rows"] if r["row"] == EXHAUSTIVE_ROW)
                card = json.loads((a.work / f"{model['model']}-{a.threads}t" / "int8_objective_latency" /
                                   (plan_row["file"] + ".json")).read_text())
                model["exhaustive"] = exhaustive_check(model["model"], card, a.threads, 0.4)
        out.with_suffix(".json").write_text(json.dumps(res, indent=2, default=str) + "\n")
        out.with_suffix(".md").write_text(to_markdown(res))
        print(to_markdown(res))
        return
    res = {"tool": "benchmarks/precision_plan.py", "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "machine": cpu_summary(), "threads": a.threads, "rounds": a.rounds, "calls": a.calls,
           "onnxruntime": onnxruntime.__version__, "models": []}
    previous = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").is_file() else {}
    before = {m["model"]: m for m in previous.get("models", [])}
    names = [m for m in a.models.split(",") if m]
    for name in names:
        model = measure(name, a.work / f"{name}-{a.threads}t", a.threads, a.rounds, parse_calls(a.calls))
        old = before.get(name, {})
        plan_file = lambda m: next((r["file"] for r in m.get("rows", []) if r["row"] == EXHAUSTIVE_ROW), None)  # noqa: E731
        if "exhaustive" in old and plan_file(old) == plan_file(model) and name not in a.exhaustive.split(","):
            model["exhaustive"] = old["exhaustive"]  # the same plan: its brute-force check still holds
        if name in a.exhaustive.split(","):
            plan_row = next(r for r in model["rows"] if r["row"] == EXHAUSTIVE_ROW)
            card = json.loads((a.work / f"{name}-{a.threads}t" / "int8_objective_latency" /
                               (plan_row["file"] + ".json")).read_text())
            model["exhaustive"] = exhaustive_check(name, card, a.threads, 0.4)
        res["models"].append(model)
        res["models"] += [m for m in previous.get("models", []) if m["model"] not in names
                          and m["model"] not in {x["model"] for x in res["models"]}]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(res, indent=2, default=str) + "\n")
        out.with_suffix(".md").write_text(to_markdown(res))
    print(to_markdown(res))


if __name__ == "__main__":
    main()
