"""Check the project's targets against committed results and write benchmarks/results/summary.md.

Every input is a committed file (see benchmarks/README.md); nothing is read from ``runs/`` or
any other ignored folder. The bench results carry what they need from the checkpoint and
artifact cards (training metrics, QAT parity gate), so the bench JSON is the one source.

  --bench       bench results, run 1 (CPU, the pipeline's artifacts)
  --repeat      the same command again, right after (run-to-run agreement of the paired ratios)
  --one-thread  the same artifacts at --threads 1 (the edge-box case); --one-thread-repeat: again, right after
  --loop        LABEL=PATH of benchmarks/paired_loop.py outputs on the same artifacts (harness vs minimal loop)
  --lever       LABEL=PATH of paired_loop.py runs measuring export/session levers
  --profile     benchmarks/ort_profile.py outputs, each as LABEL=PATH
  --fx          reference FX baseline results
  --throughput  train throughput results
  --reference   the reference work's figures (benchmarks/reference_figures.json)

    python benchmarks/summarize.py --bench benchmarks/results/cpu.json \
        --repeat benchmarks/results/cpu-repeat.json --one-thread benchmarks/results/cpu-1t.json \
        --loop benchmarks/results/paired_loop.json --profile before=benchmarks/results/ort_profile.json \
        --fx benchmarks/results/reference-fx-wiflow-half.json --throughput benchmarks/results/train_throughput.json \
        --reference benchmarks/reference_figures.json --out benchmarks/results/summary.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgepose.metrics import ACCURACY_GATE_PP

#: Keys of a bench results document this script reads (tests/test_bench_report.py checks a fresh
#: bench run has every one): top level, then per row.
BENCH_KEYS = ("machine", "threads", "rows", "rounds", "rounds_used", "rounds_disturbed", "checkpoint")
ROW_KEYS = ("artifact", "label", "kind", "precision", "method", "backend", "bytes", "size_mb", "latency",
            "speed_vs_fp32_onnx", "compute", "accuracy", "delta_pck20_ci")


def _threads(doc: dict) -> str:
    n = doc.get("threads") or 0
    return f"{n} thread{'s' if n != 1 else ''}" if n else "default threads"


def _load(path: Path | None) -> dict | list | None:
    return json.loads(path.read_text()) if path and path.is_file() else None


def _pck(row: dict, t: str = "0.2", which: str = "clean") -> float:
    return 100 * row["accuracy"][which]["pck"][t]


def default_int8(rows: list[dict]) -> dict | None:
    """The row of what ``edgepose export --precision int8`` writes with every other option at its default."""
    from edgepose.exporting import ExportRequest

    fields = ExportRequest.__dataclass_fields__
    calib, recipe, target = fields["calib"].default, fields["recipe"].default, fields["target"].default

    def is_default(r: dict) -> bool:
        rec = r.get("recipe") or {}
        if r["backend"] != "ort-cpu" or rec.get("recipe") != recipe or (r.get("target") or "ort-cpu") != target:
            return False
        if r["precision"] == "fp32":  # auto found no int8 form that pays here and shipped the fp32 graph
            return rec.get("chosen") == "fp32"
        return r["precision"] == "int8" and r["method"] == "ptq" and rec.get("calibrator") == calib

    return next((r for r in rows if is_default(r)), None)


def _ort(rows: list[dict], pred) -> dict | None:
    return next((r for r in rows if r["backend"] == "ort-cpu" and pred(r)), None)


class Summary:
    """Markdown lines plus target checks."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.checks: list[dict] = []

    def check(self, name: str, value, goal: str, ok: bool, why: str = "") -> None:
        self.checks.append({"target": name, "measured": value, "goal": goal, "met": bool(ok), "note": why})

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)


def _machine_line(res: dict) -> str:
    from edgepose.benchmarking.machine import describe_machine

    return describe_machine(res["machine"], res.get("threads"), res.get("spinning"), res.get("parallel"))


def _training(s: Summary, res: dict) -> None:
    ck = res.get("checkpoint") or {}
    m = ck.get("metrics")
    if not m:
        return
    epochs = ck.get("epochs_run") or (ck.get("training") or {}).get("epochs_run")
    s.add(f"## Training core (the benched checkpoint: {ck.get('model')}, best epoch {ck.get('best_epoch')}"
          + (f" of {epochs}" if epochs else "") + f"; recipe {ck.get('recipe')})", "",
          "| | PCK@10 | PCK@20 | PCK@30 | PCK@40 | PCK@50 | MPJPE | end-effector PCK@20 |", "|---|---|---|---|---|---|---|---|")
    for name, key in (("model, clean test", ("test", "clean")), ("model, full test (corrupt zero-filled)", ("test", "full")),
                      ("mean-pose baseline", ("test", "mean_pose")), ("model, train subset", ("train_subset", None)),
                      ("model, validation", ("val", None))):
        sc = m.get(key[0], {}).get(key[1]) if key[1] else m.get(key[0])
        if not sc or "pck" not in sc:
            continue
        p = sc["pck"]
        ends = sc.get("end_effectors_pck", {}).get("0.2")
        s.add(f"| {name} | " + " | ".join(f"{100 * p[t]:.2f}" for t in ("0.1", "0.2", "0.3", "0.4", "0.5"))
              + f" | {sc['mpjpe']:.4f} | {'' if ends is None else f'{100 * ends:.2f}'} |")
    s.add("")


def _accuracy(s: Summary, rows: list[dict], d8: dict | None) -> None:
    fp32 = _ort(rows, lambda r: r["precision"] == "fp32")
    s.add("## Export accuracy (ONNX Runtime CPU, clean test split, vs the fp32 checkpoint)", "",
          "| artifact | size MB | × fp32 size | PCK@20 | Δ PCK@20 pp | 95 % CI (bootstrap over recordings) | MPJPE |",
          "|---|---|---|---|---|---|---|")
    for r in rows:
        if "accuracy" not in r:
            continue
        ci = r.get("delta_pck20_ci") or {}
        band = f"[{ci['low_pp']:+.2f}, {ci['high_pp']:+.2f}]" if ci else "–"
        s.add(f"| {r['label']} ({r['backend']}) | {r['size_mb']:.3f} | {r['bytes'] / fp32['bytes']:.3f} | {_pck(r):.2f} | "
              f"{ci.get('delta_pp', float('nan')):+.2f} | {band} | {r['accuracy']['clean']['mpjpe']:.4f} |")
    s.add("")
    fp16 = _ort(rows, lambda r: r["precision"] == "fp16")
    if fp16 and fp16.get("delta_pck20_ci"):
        ci = fp16["delta_pck20_ci"]
        s.check("fp16 ΔPCK@20, CI lower end (pp)", round(ci["low_pp"], 2), "≥ −0.1", ci["low_pp"] >= -0.1)
    if d8 is None:
        from edgepose.exporting import ExportRequest

        s.add(f"These results hold no row of today's default int8 export (recipe "
              f"`{ExportRequest.__dataclass_fields__['recipe'].default}`): they were made before it; the default's "
              "goals are not checked here.")
        s.add("")
    if d8 and d8.get("delta_pck20_ci"):
        ci = d8["delta_pck20_ci"]
        s.check(f"default int8 ({d8['label']}) ΔPCK@20 (pp, 95 % CI)",
                f"{ci['delta_pp']:+.2f} [{ci['low_pp']:+.2f}, {ci['high_pp']:+.2f}]",
                f"≥ −{ACCURACY_GATE_PP:g} (CI lower end, the accuracy gate)", ci["low_pp"] >= -ACCURACY_GATE_PP)
        s.check("default int8 size / fp32 ONNX size", round(d8["bytes"] / fp32["bytes"], 3), "≤ 0.32",
                d8["bytes"] / fp32["bytes"] <= 0.32)
    qat = _ort(rows, lambda r: r["method"] == "qat")
    gate = (qat or {}).get("parity", {}).get("fake_quant_vs_onnx_int8")
    if gate:
        g = 100 * abs(gate["reference_pck20"] - gate["candidate_pck20"])
        s.check("QAT fake-quant vs shipped int8, abs Δ PCK@20 (pp)", round(g, 3), "≤ 0.5", g <= 0.5)


def _ratio_cell(rec: dict | None) -> str:
    return f"{rec['median']:.3f} ({rec['q1']:.3f}–{rec['q3']:.3f})" if rec and rec.get("n", 1) else "–"


def _speed(s: Summary, runs: list[tuple[str, dict]]) -> None:
    res = runs[0][1]
    batches = [str(b) for b in res["batches"]]
    s.add("## Speed: paired ratios to fp32 ONNX (median and IQR over undisturbed rounds; > 1 faster)", "")
    head = "| artifact | backend | " + " | ".join(f"{tag} b{b}" for tag, _ in runs for b in batches) + " |"
    s.add(head, "|" + "---|" * (2 + len(runs) * len(batches)))
    for r in res["rows"]:
        cells = []
        for _, doc in runs:
            twin = next((x for x in doc["rows"] if x["artifact"] == r["artifact"] and x["backend"] == r["backend"]), {})
            cells += [_ratio_cell(twin.get("speed_vs_fp32_onnx", {}).get(b)) for b in batches]
        s.add(f"| {r['label']} | {r['backend']} | " + " | ".join(cells) + " |")
    s.add("")
    for tag, doc in runs:
        detail = doc.get("rounds_detail", [])
        if detail and all(x.get("probe_level") is not None for x in detail):  # the adaptive bench's rule
            level = ", ".join(f"{100 * x['probe_level']:+.0f} %" for x in detail)
            slow = ", ".join(f"{100 * x['probe_slowest']:+.0f} %" for x in detail)
            pr = doc.get("probe") or {}
            probe = (f"probe vs the run's reference {level}, disturbed above "
                     f"{100 * pr.get('tolerance_level', float('nan')):.0f} %; slowest probe reading {slow}, "
                     f"disturbed above {100 * pr.get('tolerance_spike', float('nan')):.0f} %")
        else:  # older results: the spread of the probe within a round against a margin
            moved = ", ".join(f"{100 * x['probe_moved']:.0f} %" for x in detail)
            probe = f"probe moved {moved}; margin {100 * (doc.get('probe') or {}).get('margin', 0):.0f} %"
        s.add(f"- {tag}: {doc['rounds']} rounds, {doc['rounds_disturbed']} disturbed ({probe}), medians over "
              f"{doc['rounds_used']}; threads {doc.get('threads') or 'default'}, "
              f"spinning {'on' if doc.get('spinning') else 'off'}"
              + (f", ONNX Runtime CPU in {doc['parallel']} mode." if doc.get("parallel") else "."))
    s.add("")


def _agreement(s: Summary, tag: str, a: dict, b: dict) -> None:
    """Run-to-run agreement of the int8/fp16 paired ratios of two back-to-back runs."""
    worst, where = 0.0, ""
    for r in a["rows"]:
        if r["precision"] not in ("int8", "fp16"):
            continue
        twin = next((x for x in b["rows"] if x["artifact"] == r["artifact"] and x["backend"] == r["backend"]), None)
        for bb in map(str, a["batches"]):
            ra = r.get("speed_vs_fp32_onnx", {}).get(bb, {}).get("median")
            rb = (twin or {}).get("speed_vs_fp32_onnx", {}).get(bb, {}).get("median")
            if ra and rb and abs(rb / ra - 1) > worst:
                worst, where = abs(rb / ra - 1), f"{r['label']} b{bb}: {ra:.3f} vs {rb:.3f}"
    s.check(f"two back-to-back runs ({tag}): worst int8/fp16 ratio difference", f"{100 * worst:.1f} % ({where})",
            "≤ 10 %", worst <= 0.10)


def _verdict_names(doc: dict) -> dict[str, str]:
    """Per batch size (and target): the artifact the report ships, or the undecided pair."""
    from edgepose.reporting.verdict import verdict_choices

    out = {}
    for c in verdict_choices(doc):
        key = f"b{c.batch}" + (f" {c.target}" if c.target else "")
        out[key] = ("undecided between " + " and ".join(sorted(r["label"] for r, _ in c.pair))
                    if c.outcome == "undecided" else c.row["label"])
    return out


def _same_verdict(s: Summary, tag: str, a: dict, b: dict) -> None:
    """Issue 22: two runs back to back name the same artifact per batch size (or the same undecided pair)."""
    na, nb = _verdict_names(a), _verdict_names(b)
    keys = sorted(set(na) | set(nb), key=lambda k: (len(k), k))
    s.check(f"two back-to-back runs ({tag}): the verdict per batch size",
            "; ".join(f"{k} {na.get(k, 'none')} / {nb.get(k, 'none')}" for k in keys),
            "the same artifact (or the same undecided pair)", bool(keys) and na == nb)


def _int8_goals(s: Summary, tag: str, doc: dict) -> None:
    """The issue's speed goals for the default int8 export, by the paired medians."""
    d8 = default_int8(doc["rows"])
    if d8 is None:
        return
    for bb, goal in (("64", 1.5), ("1", 1.2)):
        rec = d8.get("speed_vs_fp32_onnx", {}).get(bb)
        if rec and rec.get("n"):
            s.check(f"default int8 vs fp32 ONNX, batch {bb} ({tag})", f"{rec['median']:.2f}× "
                    f"(IQR {rec['q1']:.2f}–{rec['q3']:.2f})", f"≥ {goal}×", rec["median"] >= goal)


def _limit(s: Summary, runs: list[tuple[str, dict]]) -> None:
    res = runs[0][1]
    peak = res["machine"].get("peak") or {}
    s.add("## Distance to the machine's limit", "",
          f"Peak = {peak.get('formula')}: {peak.get('physical_cores')} cores × {peak.get('clock_ghz')} GHz "
          f"({peak.get('clock_source')}) × {peak.get('bits_per_cycle')} bits/cycle ({peak.get('isa')}) → "
          f"{peak.get('fp32_gmacs', 0):.1f} GMAC/s fp32, {peak.get('int8_gmacs', 0):.1f} GMAC/s int8.", "",
          "| run | artifact | MMAC/window | b1 GMAC/s | b1 % peak | b1 × floor | b64 GMAC/s | b64 % peak | b64 × floor |",
          "|---|---|---|---|---|---|---|---|---|")
    for tag, doc in runs:
        for r in doc["rows"]:
            c = r.get("compute")
            if not c:
                continue
            cells = []
            for b in ("1", "64"):
                a = c["by_batch"].get(b) or {}
                cells += [f"{a['gmacs_per_s']:.1f}", f"{100 * a['fraction_of_peak']:.1f}", f"{a['x_floor']:.1f}"] if a \
                    else ["–"] * 3
            s.add(f"| {tag} | {r['label']} ({r['backend']}) | {c['macs_per_window'] / 1e6:.2f} | " + " | ".join(cells) + " |")
    s.add("")
    for tag, doc in runs:
        fp32 = _ort(doc["rows"], lambda r: r["precision"] == "fp32")
        a = (fp32 or {}).get("compute", {}).get("by_batch", {}).get("64")
        if a:
            s.check(f"fp32 ONNX batch 64 vs its fp32 floor ({tag})", f"{a['x_floor']:.2f}× floor "
                    f"({100 * a['fraction_of_peak']:.0f} % of peak)", "≤ 2×", a["x_floor"] <= 2)


def _unpaired(row: dict, base: dict, b: str) -> float | None:
    """The old harness's ratio: median fp32 p50 over rounds / median artifact p50 over rounds (no pairing)."""
    import statistics

    x = [v for v in row["latency"][b].get("rounds_p50_ms", []) if v]
    y = [v for v in base["latency"][b].get("rounds_p50_ms", []) if v]
    return statistics.median(y) / statistics.median(x) if x and y else None


def _loop(s: Summary, runs: list[tuple[str, dict]], loops: list[tuple[str, dict]]) -> None:
    s.add("## Harness vs minimal in-process loop (benchmarks/paired_loop.py)", "",
          "Harness ratios three ways — *paired*: the artifact and fp32 ONNX in alternating blocks in one process "
          "(what the report uses); *cross-process*: fp32 ONNX timed in its own process in the same round; "
          "*unpaired*: median p50 over rounds / median p50 over rounds, the harness's method before paired rounds. "
          "Each loop is compared with the first bench run at its thread count.", "")
    for tag, lp in loops:
        run_tag, res = next(((t, d) for t, d in runs if (d.get("threads") or 0) == lp["threads"]), (None, None))
        s.add(f"### loop {tag}: {lp['threads']} thread(s), spinning {'on' if lp['spinning'] else 'off'}, "
              f"{lp['rounds']} rounds, calls per round {lp['calls']}, inputs: {lp['inputs']} — vs bench {run_tag}", "")
        if res is None:
            s.add("no bench run at this thread count", "")
            continue
        s.add("| artifact | batch | harness paired (IQR) | cross-process (IQR) | unpaired | loop (IQR) | paired / loop |",
              "|---|---|---|---|---|---|---|")
        base = next((r for r in res["rows"] if r["artifact"] == lp["baseline"] and r["backend"] == "ort-cpu"), None)
        worst = 0.0
        for name, per_b in lp["speed_vs_baseline"].items():
            row = next((r for r in res["rows"] if r["artifact"] == name and r["backend"] == "ort-cpu"), None)
            if row is None or name == lp["baseline"]:
                continue
            for b, rec in per_b.items():
                h = row.get("speed_vs_fp32_onnx", {}).get(b)
                if not h or not h.get("n"):
                    continue
                cross = row.get("speed_vs_fp32_onnx_cross_process", {}).get(b)
                unp = _unpaired(row, base, b) if base else None
                agree = h["median"] / rec["median"]
                worst = max(worst, abs(agree - 1))
                s.add(f"| {row['label']} | {b} | {_ratio_cell(h)} | {_ratio_cell(cross)} | "
                      f"{'–' if unp is None else f'{unp:.3f}'} | {_ratio_cell(rec)} | {agree:.3f} |")
        s.add("")
        if not lp["spinning"]:
            s.check(f"harness paired ratio ({run_tag}) vs minimal loop ({tag}), worst difference",
                    f"{100 * worst:.1f} %", "≤ 5 %", worst <= 0.05)


def _levers(s: Summary, levers: list[tuple[str, dict]]) -> None:
    """Export and session-option levers, each measured by the minimal loop against fp32 ONNX."""
    s.add("## Levers (benchmarks/paired_loop.py, ratio to fp32 ONNX with the same session options)", "",
          "| lever | artifact | b1 (IQR) | b64 (IQR) |", "|---|---|---|---|")
    for tag, lp in levers:
        for name, per_b in lp["speed_vs_baseline"].items():
            s.add(f"| {tag} | {name} | {_ratio_cell(per_b.get('1'))} | {_ratio_cell(per_b.get('64'))} |")
    s.add("")


def _profiles(s: Summary, profiles: list[tuple[str, list]]) -> None:
    s.add("## Where the time goes (ONNX Runtime CPU profile, kernel ms per run)", "")
    for tag, prof in profiles:
        for p in prof:
            top = ", ".join(f"{o['op']} {o['ms_per_run']:.1f} ({o['nodes']})" for o in p["ops"][:6])
            s.add(f"- {tag}, {p['file']} (batch {p['batch']}): {p['kernel_ms_per_run']:.1f} ms — {top}")
    s.add("")


def _reference(s: Summary, fx: dict | None, ref: dict | None, bench_fingerprint: str | None = None) -> None:
    if not fx and not ref:
        return
    s.add("## Reference method (torch FX, fbgemm, global qconfig)", "")
    if fx and "delta_pck20" not in fx.get("ptq", {}):
        raise SystemExit("--fx: a reference_fx_baseline.py result without per-recording intervals (an older "
                         "format); rerun benchmarks/reference_fx_baseline.py")
    if fx:
        def ci(d: dict) -> str:
            return f"{d['delta_pp']:+.2f} pp [{d['low_pp']:+.2f}, {d['high_pp']:+.2f}]"

        ptq, qat = fx["ptq"], fx["qat"]
        gap = 100 * (qat["fake_quant_pck20"] - qat["int8_pck20"])
        same = fx.get("dataset", {}).get("fingerprint") == bench_fingerprint
        split = "this test split" if same else "ANOTHER dataset's test split (fingerprints differ)"
        s.add(f"- The same method on {Path(fx['checkpoint']).name} and {split} ({fx['test_windows']} clean "
              f"windows, {fx['test_recordings']} recordings; ΔPCK@20 vs the fp32 torch model, "
              f"{100 * ptq['delta_pck20'].get('level', 0.95):.0f} % CI over "
              f"recordings): fp32 {100 * fx['fp32_pck20']:.2f}%; FX static PTQ ({ptq['calib_batches']} calibration "
              f"batches) {100 * ptq['int8_pck20']:.2f}% ({ci(ptq['delta_pck20'])}); FX QAT ({qat['epochs']} epochs, "
              f"lr {qat['lr']}) fake-quant {100 * qat['fake_quant_pck20']:.2f}%, converted int8 "
              f"{100 * qat['int8_pck20']:.2f}% ({ci(qat['delta_pck20'])}; fake−int8 gap {gap:+.2f} pp).")
    if ref:
        s.add(f"- The reference on its real data ({ref['model']}; fp32 {ref['fp32_pck20_pct']:.2f}%): PTQ "
              f"{ref['ptq_delta_pp']:+.2f} pp, QAT {ref['qat_delta_pp']:+.2f} pp, fake−int8 gap "
              f"{ref['qat_fake_quant_vs_int8_gap_pp']:.2f} pp. Source: {ref['source']}")
    s.add("")


def summarize(bench: Path, out: Path, repeat: Path | None = None, one_thread: Path | None = None,
              one_thread_repeat: Path | None = None,
              loop: list[tuple[str, Path]] = (), profiles: list[tuple[str, Path]] = (), fx: Path | None = None,
              throughput: Path | None = None, reference: Path | None = None,
              levers: list[tuple[str, Path]] = ()) -> Summary:
    """Build the summary from committed result files and write ``out`` (+ ``.json`` with the checks)."""
    res = _load(bench)
    rows = res["rows"]
    s = Summary()
    s.add("# Results summary", "", f"Machine: {_machine_line(res)}.", "")
    _training(s, res)
    d8 = default_int8(rows)
    _accuracy(s, rows, d8)
    runs = [(f"{_threads(doc)}, {k}", doc) for doc, k in ((res, "run 1"), (_load(repeat), "run 2"),
                                                            (_load(one_thread), "run 1"),
                                                            (_load(one_thread_repeat), "run 2")) if doc]
    _speed(s, runs)
    for i in range(0, len(runs) - 1):
        a, b = runs[i], runs[i + 1]
        if a[0].endswith("run 1") and b[0].endswith("run 2") and a[1].get("threads") == b[1].get("threads"):
            _agreement(s, a[0].split(",")[0], a[1], b[1])
            _same_verdict(s, a[0].split(",")[0], a[1], b[1])
    for tag, doc in runs:
        _int8_goals(s, tag, doc)
    _limit(s, runs)
    loops = [(tag, _load(p)) for tag, p in loop if _load(p)]
    if loops:
        _loop(s, runs, loops)
    lev = [(tag, _load(p)) for tag, p in levers if _load(p)]
    if lev:
        _levers(s, lev)
    profs = [(tag, _load(p)) for tag, p in profiles if _load(p)]
    if profs:
        _profiles(s, profs)
    _reference(s, _load(fx), _load(reference), (res.get("dataset") or {}).get("fingerprint"))
    tp = _load(throughput)
    if tp:
        s.add("## Training throughput", "",
              f"{tp['model']}, batch {tp['batch']}: {tp['train_windows_per_s']:.0f} windows/s end to end; data "
              f"{tp['data_ms_per_batch_median']:.1f} ms vs step {tp['step_ms_per_batch_median']:.1f} ms per batch "
              f"(data path {100 * tp['data_share_of_step']:.1f} % of the time).", "")
    s.add("## Targets", "", "| target | measured | goal | met |", "|---|---|---|---|")
    s.add(*[f"| {c['target']} | {c['measured']} | {c['goal']} | {'yes' if c['met'] else '**no**'} |" for c in s.checks])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(s.lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps({"checks": s.checks}, indent=2, ensure_ascii=False) + "\n")
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", type=Path, required=True)
    ap.add_argument("--repeat", type=Path)
    ap.add_argument("--one-thread", type=Path)
    ap.add_argument("--one-thread-repeat", type=Path)
    ap.add_argument("--loop", action="append", default=[], help="LABEL=PATH of a paired_loop.py output (first: the check)")
    ap.add_argument("--profile", action="append", default=[], help="LABEL=PATH of an ort_profile.py output")
    ap.add_argument("--lever", action="append", default=[], help="LABEL=PATH of a paired_loop.py lever run")
    ap.add_argument("--fx", type=Path)
    ap.add_argument("--throughput", type=Path)
    ap.add_argument("--reference", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    profiles = [(p.split("=", 1)[0], Path(p.split("=", 1)[1])) for p in a.profile]
    loops = [(p.split("=", 1)[0], Path(p.split("=", 1)[1])) for p in a.loop]
    levers = [(p.split("=", 1)[0], Path(p.split("=", 1)[1])) for p in a.lever]
    s = summarize(a.bench, a.out, a.repeat, a.one_thread, a.one_thread_repeat, loops, profiles, a.fx, a.throughput,
                  a.reference, levers)
    print("\n".join(s.lines))


if __name__ == "__main__":
    main()
