"""Markdown + self-contained HTML from one or more bench results files.

Rows from several files (a CPU box and a GPU box, say) merge into one set of tables keyed by
machine and backend. The verdict rule lives in :mod:`.verdict`, the figures in :mod:`.plots`;
the Markdown links its PNG figures written beside it, the HTML embeds them.
"""

from __future__ import annotations

from pathlib import Path

from edgepose.benchmarking.machine import describe_machine
from edgepose.benchmarking.results import load_results
from edgepose.io import atomic_path
from edgepose.metrics import pck_at
from edgepose.reporting.plots import accuracy_plot, is_plan, pareto, plan_plot, speed_plot
from edgepose.reporting.render import Block, Figure, to_html, to_markdown
from edgepose.reporting.verdict import MAX_DROP_PP, MIN_ROUNDS, pck20, sentence, verdict_choices

__all__ = ["MAX_DROP_PP", "build_report", "load_results", "pareto", "verdicts"]


def machine_name(doc: dict) -> str:
    """Short machine label: CPU model, cores, GPU when the run used it, threads."""
    m = doc["machine"]
    gpu = f" + {m['gpu']['name']}" if doc["device"] == "cuda" and m.get("gpu") else ""
    threads = doc.get("threads")
    # ONNX Runtime CPU rows only (torch and GPU backends run intra); absent in results made before the mode
    sharded = ", batch-sharded ORT" if doc.get("parallel") == "batch" and doc.get("device") == "cpu" else ""
    return (f"{m['cpu_model']} ({m['cpu_count']} cores){gpu}, {threads or 'default'} "
            f"thread{'s' if threads != 1 else ''}{sharded}")


def verdicts(docs: list[dict], max_drop_pp: float = MAX_DROP_PP) -> list[str]:
    """One sentence per (machine, batch[, target]) naming the single artifact to ship (see :mod:`.verdict`)."""
    return [sentence(c, f"{machine_name(d)} [{d['device']}]") for d in docs for c in verdict_choices(d, max_drop_pp)]


def _rows(docs: list[dict]) -> list[dict]:
    """Every row of every document, tagged with its machine (and source file when machines repeat)."""
    names = [machine_name(d) for d in docs]
    out = []
    for d, name in zip(docs, names):
        tag = name if names.count(name) == 1 else f"{name} · {Path(d['_source']).name}"
        for r in d["rows"]:
            out.append({**r, "_machine": tag, "_device": d["device"], "_threads": d.get("threads")})
    same_cpu = len({d["machine"].get("cpu_model") for d in docs if d["rows"]}) == 1
    for r in out:
        r["_same_cpu"] = same_cpu
    return out


def _fmt(v: float | None, spec: str = ".2f", none: str = "–") -> str:
    return none if v is None else format(v, spec)


def _speed_table(rows: list[dict], batches: list[str]) -> Block:
    head = ["machine", "artifact", "backend", "size MB"]
    for b in batches:
        head += [f"b{b} p50 ms", f"b{b} p99 ms", f"b{b} × fp32 ONNX (IQR)"]
    body = []
    for r in rows:
        cells = [r["_machine"], r["label"], r["backend"], f"{r['size_mb']:.2f}"]
        for b in batches:
            lat = r["latency"].get(b)
            sr = r.get("speed_vs_fp32_onnx", {}).get(b, {})
            ratio = f"{sr['median']:.2f} ({sr['q1']:.2f}–{sr['q3']:.2f})" if sr.get("n") else "–"
            cells += [_fmt(lat["p50_ms"] if lat else None), _fmt(lat["p99_ms"] if lat else None), ratio]
        body.append(cells)
    return Block("table", head=head, rows=body)


def _limit_table(rows: list[dict], batches: list[str]) -> Block:
    head = ["machine", "artifact", "backend", "MMAC/window", "peak used"]
    for b in batches:
        head += [f"b{b} GMAC/s", f"b{b} % of peak", f"b{b} floor ms", f"b{b} × floor"]
    body = []
    for r in rows:
        comp = r.get("compute")
        if not comp:
            continue
        cells = [r["_machine"], r["label"], r["backend"], f"{comp['macs_per_window'] / 1e6:.1f}", comp["peak_precision"]]
        for b in batches:
            a = comp["by_batch"].get(b) or {}
            cells += [_fmt(a.get("gmacs_per_s"), ".1f"), _fmt(100 * a["fraction_of_peak"] if a else None, ".1f"),
                      _fmt(a.get("floor_ms"), ".3f"), _fmt(a.get("x_floor"), ".1f")]
        body.append(cells)
    return Block("table", head=head, rows=body)


def _accuracy_table(rows: list[dict]) -> Block:
    head = ["machine", "artifact", "backend", "PCK@10", "PCK@20", "PCK@30", "PCK@40", "PCK@50", "MPJPE",
            "full PCK@20", "Δ PCK@20 pp [95 % CI]"]
    body = []
    for r in rows:
        acc = r.get("accuracy", {}).get("clean", {})
        if not acc:
            continue
        cells = [r["_machine"], r["label"], r["backend"]]
        for t in (0.1, 0.2, 0.3, 0.4, 0.5):
            try:
                cells.append(f"{100 * pck_at(acc['pck'], t):.2f}")
            except KeyError:
                cells.append("–")
        cells += [_fmt(acc.get("mpjpe"), ".4f"), _fmt(pck20(r, "full"))]
        ci = r.get("delta_pck20_ci")
        d = r.get("delta_pck_pp", {})
        point = next((v for k, v in d.items() if abs(float(k) - 0.2) < 1e-9), None)
        cells.append(f"{ci['delta_pp']:+.2f} [{ci['low_pp']:+.2f}, {ci['high_pp']:+.2f}]" if ci
                     else _fmt(point, "+.2f"))
        body.append(cells)
    return Block("table", head=head, rows=body)


def _rounds_lines(docs: list[dict]) -> list[str]:
    lines = []
    for d in docs:
        src = Path(d["_source"]).name
        if "rounds_detail" not in d:
            lines.append(f"{src}: {d.get('rounds', 1)} round(s), no probe and no paired ratios (schema 1 file).")
            continue
        bad = [r for r in d["rounds_detail"] if r["disturbed"]]
        probe = d.get("probe") or {}
        if "probe_level" in (d["rounds_detail"] or [{}])[0]:  # the calibrated rule: each round against the run's reference
            moved = ", ".join("–" if r["probe_level"] is None else
                              f"{100 * r['probe_level']:+.0f} % / {100 * r['probe_slowest']:+.0f} %"
                              for r in d["rounds_detail"])
            text = (f"{src}: {d['rounds']} rounds, each in a fresh shuffled order; probe stall factor against the "
                    f"run's reference, round median / slowest reading: {moved} (disturbed above "
                    f"{100 * (probe.get('tolerance_level') or 0):.0f} % / {100 * (probe.get('tolerance_spike') or 0):.0f} %); ")
            if d.get("stopped"):
                text += (f"stopped: {d['stopped']} (at least {d.get('rounds_min')} undisturbed rounds"
                         + (f", time budget {d['time_budget_s']:.0f} s); " if d.get("time_budget_s") else "); "))
        else:
            moved = ", ".join(f"{100 * r['probe_moved']:.0f} %" for r in d["rounds_detail"])
            text = (f"{src}: {d['rounds']} rounds, each in a fresh shuffled order; probe moved {moved} per round "
                    f"(margin {100 * probe.get('margin', 0):.0f} %); ")
        text += (f"{len(bad)} disturbed and left out, medians over {d['rounds_used']}." if bad and d.get("rounds_used") != d["rounds"]
                 else "none disturbed." if not bad else "every round disturbed: medians over all of them.")
        text += f" Speed baseline: {d.get('speed_baseline')}."
        lines.append(text)
    return lines


def _skipped_lines(docs: list[dict]) -> list[str]:
    """One line per (source, backend, reason), naming how many artifacts it covers."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for d in docs:
        for s in d.get("skipped", []):
            groups.setdefault((Path(d["_source"]).name, s["backend"], s["reason"]), []).append(s["artifact"])
    return [f"{backend} ({src}, {len(arts)} artifact{'s' if len(arts) != 1 else ''}): {reason}"
            for (src, backend, reason), arts in groups.items()]


def _figures(rows: list[dict], batches: list[str]) -> list[Block]:
    blocks = []
    for b in batches:
        blocks.append(Block("h3", f"Batch {b}"))
        blocks.append(Block("figs", figures=[
            Figure(f"PCK@20 vs p50 latency, batch {b} (large markers: Pareto front)", f"pareto-b{b}.png",
                   accuracy_plot(rows, lambda r, b=b: r["latency"].get(b, {}).get("p50_ms"),
                                 f"p50 latency per batch-{b} call (ms, log)",
                                 f"Accuracy vs latency, batch {b} (large markers: Pareto front)")),
            Figure(f"Speed vs fp32 ONNX, batch {b} (median, IQR, min–max over paired rounds)", f"speed-b{b}.png",
                   speed_plot(rows, b, f"Speed vs fp32 ONNX, batch {b}")),
        ]))
    blocks.append(Block("h3", "Size"))
    blocks.append(Block("figs", figures=[Figure(
        "PCK@20 vs size on disk", "size.png",
        accuracy_plot([r for r in rows if r["backend"] in ("ort-cpu", "torch-cpu", "ort-cuda", "torch-cuda", "tensorrt")],
                      lambda r: r["size_mb"], "size on disk (MB = 10^6 bytes, log)",
                      "Accuracy vs size (large markers: Pareto front)"))]))
    return blocks


def _plan_blocks(rows: list[dict], batches: list[str]) -> list[Block]:
    """The per-layer plan against the other recipes: ΔPCK@20 vs speed, one figure per batch."""
    plans = [r for r in rows if is_plan(r)]
    if not plans:
        return []
    return [Block("h2", "Per-layer int8 plan vs the other recipes"),
            Block("p", "Each point: an artifact's paired speed ratio to fp32 ONNX (median, inter-quartile range) "
                       "against its ΔPCK@20 vs fp32 (paired bootstrap 95 % interval over test recordings). Stars are "
                       "per-layer plans (the default int8, `auto`, or `export --objective`): int8 only where this machine measured it faster, within "
                       "the accuracy budget."),
            Block("figs", figures=[Figure(f"ΔPCK@20 vs speed, batch {b}", f"plan-b{b}.png",
                                          plan_plot(rows, b, f"Per-layer plan vs recipes, batch {b}")) for b in batches])]


def find_sensitivity(paths: list[Path]) -> list[Path]:
    """``sensitivity.json`` files beside the given results files (as ``edgepose analyze --out`` writes them)."""
    seen: list[Path] = []
    for p in paths:
        cand = Path(p).parent / "sensitivity.json"
        if cand.is_file() and cand.resolve() not in [s.resolve() for s in seen]:
            seen.append(cand)
    return seen


def _sensitivity_blocks(paths: list[Path], top: int = 12) -> list[Block]:
    """Per sensitivity file: the ranked table's top rows and the plot."""
    from edgepose.analysis.plot import sensitivity_png
    from edgepose.analysis.sensitivity import load_result

    blocks: list[Block] = []
    for i, path in enumerate(paths):
        res = load_result(Path(path))
        speed = any(g.int8_gain_us for g in res.groups)
        head = ["rank", "group", "kind", "ΔPCK@20 pp", "ΔMPJPE", "SQNR dB"] + (["int8 gain µs"] if speed else [])
        body = []
        for k, g in enumerate(res.ranked()[:top], 1):
            row = [str(k), g.name, g.kind, f"{g.delta_pck20_pp:+.2f}", f"{g.delta_mpjpe:+.5f}", f"{g.sqnr_db:.1f}"]
            if speed:
                row.append(", ".join(f"b{b}: {v:+.0f}" for b, v in (g.int8_gain_us or {}).items()) or "–")
            body.append(row)
        all8 = (f" Every group int8 at once: ΔPCK@20 {res.all_int8_delta_pck20_pp:+.2f} pp."
                if res.all_int8_delta_pck20_pp is not None else "")
        blocks += [Block("h3", f"{res.model} ({res.target}, {res.calibrator}) — {Path(path).name}"),
                   Block("p", f"Each group alone int8, scored on {res.windows} clean {res.split} windows against fp32 "
                              f"(PCK@20 {100 * res.fp32_pck20:.2f} %); the {min(top, len(res.groups))} most harmful of "
                              f"{len(res.groups)} shown.{all8}"),
                   Block("table", head=head, rows=body),
                   Block("figs", figures=[Figure(f"int8 sensitivity, {res.model}", f"sensitivity-{i}.png",
                                                 sensitivity_png(res))])]
    return ([Block("h2", "int8 sensitivity (validation)")] + blocks) if blocks else []


def build_report(paths: list[Path], out_dir: Path, max_drop_pp: float = MAX_DROP_PP,
                 sensitivity: list[Path] | None = None) -> tuple[Path, Path]:
    """Write ``report.md`` (+ its PNG figures beside it) and a self-contained ``report.html`` into ``out_dir``.

    ``sensitivity``: ``sensitivity.json`` files to include (default: those beside the results files).
    """
    docs = load_results([Path(p) for p in paths])
    rows = _rows(docs)
    batches = sorted({b for d in docs for b in map(str, d["batches"])}, key=int)
    verdict = verdicts(docs, max_drop_pp) or ["no artifact has accuracy data and passes the gate: nothing to recommend"]
    baseline = next((r["accuracy"]["mean_pose"] for r in rows if "accuracy" in r), None)

    blocks = [Block("h1", "edgepose trade-off report"),
              Block("p", f"Sources: {', '.join(Path(d['_source']).name for d in docs)}."),
              Block("h2", "Verdict"), Block("ul", items=verdict, css="verdict"),
              Block("p", f"Rule: an artifact qualifies when the lower end of the 95 % interval of its ΔPCK@20 vs fp32 "
                         f"(paired bootstrap over test recordings) is ≥ −{max_drop_pp:g} pp. Among those, the leader by "
                         "median speed ratio to fp32 ONNX in the same round wins only when its inter-quartile range "
                         f"stays above every other's, over at least {MIN_ROUNDS} undisturbed rounds each. Otherwise the "
                         "verdict names the leader and the runner-up it could not separate — *undecided: too few "
                         f"rounds* below {MIN_ROUNDS} undisturbed rounds, a *tie* when their ranges overlap — and ships "
                         "the candidate, among those not clearly slower than the leader, with the highest lower end of "
                         "its ΔPCK@20 interval (the smallest loss the data cannot rule out), then the smallest on disk."),
              Block("h2", "Speed (paired rounds)"), _speed_table(rows, batches),
              Block("ul", items=_rounds_lines(docs)),
              Block("p", "Latency per batch call, median over the undisturbed rounds; × fp32 ONNX is the per-round "
                         "ratio p50(fp32 ONNX) / p50(artifact), median and inter-quartile range (> 1 faster).")]
    blocks += [Block("h2", "Distance to the machine's limit"), _limit_table(rows, batches),
               Block("p", "MACs of one window counted from the ONNX graph (Conv and MatMul; the torch checkpoint "
                          "uses its fp32 ONNX export's count). Peak = physical cores used × clock × (vector bits per "
                          "cycle / element bits) × MACs per lane (see docs/benchmarking.md); int8 rows against the int8 "
                          "peak, fp32/fp16 against the fp32 peak. floor = MACs × batch / peak: the time at 100 % of peak.")]
    blocks += [Block("h2", "Accuracy"), _accuracy_table(rows)]
    if baseline:
        blocks.append(Block("p", f"Mean-pose baseline (training mean pose for every window): PCK@20 "
                                 f"{100 * pck_at(baseline['pck'], 0.2):.2f}%, MPJPE {baseline['mpjpe']:.4f}."))
    blocks.append(Block("p", "PCK in %, torso-normalised (right shoulder → left hip), clean test split unless marked "
                             "*full* (corrupt windows zero-filled). MPJPE in pixel/1000. The interval resamples whole "
                             "test recordings (windows of one recording are correlated), the same draw for both models."))
    blocks += [Block("h2", "Plots")] + _figures(rows, batches)
    blocks += _plan_blocks(rows, batches)
    blocks += _sensitivity_blocks(list(sensitivity) if sensitivity is not None else find_sensitivity(list(paths)))
    skipped = _skipped_lines(docs)
    if skipped:
        blocks += [Block("h2", "Skipped backends"), Block("ul", items=skipped)]
    notes = [f"{Path(d['_source']).name}: {d['note']}" for d in docs if d.get("note")]
    if notes:
        blocks += [Block("h2", "Notes"), Block("ul", items=notes)]
    blocks += [Block("h2", "Machines"), Block("ul", items=[
        f"{Path(d['_source']).name}: {describe_machine(d['machine'], d.get('threads'), d.get('spinning'), d.get('parallel'))}" for d in docs])]

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for b in blocks:
        for f in b.figures:
            with atomic_path(out_dir / f.filename) as tmp:
                tmp.write_bytes(f.png)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    with atomic_path(md_path) as tmp:
        tmp.write_text(to_markdown(blocks))
    with atomic_path(html_path) as tmp:
        tmp.write_text(to_html(blocks, "edgepose trade-off report"))
    return md_path, html_path
