"""Does padding the TCN's widths to multiples of 4 make int8 pay at 2 threads? Per-conv profiles before/after.

ONNX Runtime's int8 convolution splits a batch across threads only when its channel counts are
multiples of 4 (``docs/int8-threads.md``). ``edgepose export --pad-channels`` quantizes an exact
rewrite of the model whose TCN widths meet that rule (``edgepose.models.padding``). This script
measures what that changes, on one machine, in one run:

* graphs: ``fp32``; ``tcn`` (only the TCN's quantization groups int8, the rest float — what the
  latency plan and ``guarded`` keep int8 on the AMX box) and ``except_attn`` (every group but the
  attention blocks), each built from the unpadded and from the padded fp32 graph with the same
  calibration windows (``…_padded``);
* per-op and **per-convolution** kernel time (ORT profiler) and unprofiled wall time at 1 and 2
  threads, batch 1 and 64, all sessions alive, rotated rounds, disturbed rounds (other processes
  > 15 % of a CPU) left out of the medians (``int8_threads.profile_run``);
* the batch-parallel eligibility of every int8 convolution of each graph;
* the validation ΔPCK@20 of each int8 graph (the exporter's probe).

    python benchmarks/tcn_padding.py --out benchmarks/results/tcn-padding-NAME.json
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import int8_threads as it
import int8_threads_lib as lib
from common import inputs_for, parse_calls

DEFAULTS = {"rounds": 7, "calls": "1=60,64=5"}
#: variant → (quantization-group filter, padded?)
VARIANTS = {
    "tcn": ("the TCN's groups int8, everything after it float", False),
    "tcn_padded": ("the same on the padded graph (--pad-channels)", True),
    "except_attn": ("every group int8 but the attention blocks", False),
    "except_attn_padded": ("the same on the padded graph (--pad-channels)", True),
}


def build(checkpoint: str, work: Path, log=print) -> tuple[dict[str, Path], dict[str, float], dict, tuple[int, int]]:
    """fp32 and the four int8 variants; their validation ΔPCK@20; the padding the card would record; the
    model's ``(channels, window)`` input shape."""
    from edgepose.exporting import ExportRequest, load_context

    paths: dict[str, Path] = {}
    val: dict[str, float] = {}
    padding: dict = {}
    shape: tuple[int, int] = (0, 0)
    for padded in (False, True):
        sub = work / ("padded" if padded else "plain")
        sub.mkdir(parents=True, exist_ok=True)
        ctx = load_context(ExportRequest(checkpoint=checkpoint, out=sub, precision="int8", pad_channels=padded,
                                         log=log), sub)
        probe = ctx.probe(threads=2)
        shape = ctx.window_shape
        if not padded:
            paths["fp32"] = ctx.fp32_onnx()
        else:
            padding = ctx.channel_padding() or {}
        suffix = "_padded" if padded else ""
        for name, keep in (("tcn", lambda g: g.startswith("tcn")), ("except_attn", lambda g: not g.startswith("attn"))):
            path = sub / f"{name}{suffix}.onnx"
            probe.build([g.name for g in probe.groups if keep(g.name)], path)
            paths[name + suffix] = path
            val[name + suffix] = probe.delta(probe.score(path))[0]
    return paths, val, padding, shape


def conv_table(rows: list[dict], shapes: dict[str, dict], batch: int, stage: str = "tcn") -> list[dict]:
    """One row per convolution of ``stage``: its shape and kernel ms per variant × threads at ``batch``."""
    by = {(r["variant"], r["threads"]): r.get("conv_ms_by_node", {}) for r in rows if r["batch"] == batch}
    out = []
    for node, shape in shapes.items():
        if shape["stage"] != stage:
            continue
        rec = {"node": node, "batch": batch, **{k: shape[k] for k in ("groups", "cin", "cout", "kernel")},
               "padded_cin": shape.get("padded_cin"), "padded_cout": shape.get("padded_cout"),
               "batch_parallel": shape.get("batch_parallel"), "batch_parallel_padded": shape.get("batch_parallel_padded"),
               "ms": {}}
        for (v, t), nodes in sorted(by.items()):
            if node in nodes:
                rec["ms"][f"{v}@{t}t"] = nodes[node]
        out.append(rec)
    return out


def shapes_of(paths: dict[str, Path], align: int) -> dict[str, dict]:
    """Conv base name → stage, groups, channels and batch-parallel verdict (unpadded and padded graph)."""
    import onnx

    plain = {lib.base_name(r["node"]): r for r in lib.conv_rows(onnx.load(str(paths["except_attn"])), align)}
    padded = {lib.base_name(r["node"]): r for r in lib.conv_rows(onnx.load(str(paths["except_attn_padded"])), align)}
    out = {}
    for node, r in plain.items():
        p = padded.get(node, {})
        out[node] = {"stage": r["stage"], "groups": r["groups"], "cin": r["cin"], "cout": r["cout"], "kernel": r["kernel"],
                     "batch_parallel": r["batch_parallel"], "padded_cin": p.get("cin"), "padded_cout": p.get("cout"),
                     "batch_parallel_padded": p.get("batch_parallel")}
    return out


def to_markdown(doc: dict) -> str:
    """The results as tables (rebuilt from the JSON by ``rebuild_reports.py``)."""
    m = doc["machine"]
    flags = lib.flags_text(m.get("cpu_flags", {}))
    run = doc["runs"]["profile"]
    lines = [f"# TCN channel padding: int8 before/after ({m.get('cpu_model', '?')}, {m.get('cpu_count', '?')} cores)", "",
             f"Generated by `{doc['tool']}` on {doc['created'][:10]} from `{doc['checkpoint']}`; ONNX Runtime "
             f"{doc['versions']['onnxruntime']}; CPU flags: {flags}; spinning {'on' if run['spinning'] else 'off'}; "
             f"{run['undisturbed_rounds']} of {run['rounds']} rounds undisturbed (medians over those).", "",
             f"Padded widths: {doc['padding'].get('tcn_widths')} → {doc['padding'].get('tcn_padded_widths')}.", "",
             "## Whole graph: speed vs fp32 (unprofiled wall time, median over rounds)", "",
             "| variant | validation ΔPCK@20 | int8 convs batch-parallel | 1t b1 | 1t b64 | 2t b1 | 2t b64 |",
             "|---|---|---|---|---|---|---|"]
    prof = {(r["variant"], r["threads"], r["batch"]): r for r in doc["profiles"]}
    for v, info in doc["variants"].items():
        cells = [f"{prof[(v, t, b)]['speed_vs_fp32']:.2f}×" if (v, t, b) in prof else "–"
                 for t in (1, 2) for b in (1, 64)]
        elig = doc["eligibility"].get(v)
        e = f"{elig['batch_parallel']} of {elig['int8_convs']}" if elig else "–"
        dv = info.get("val_dpck20_pp")
        lines.append(f"| {v} | {'–' if dv is None else f'{dv:+.2f} pp'} | {e} | " + " | ".join(cells) + " |")
    lines += ["", "## TCN convolutions at batch 64: kernel ms (ORT profiler)", "",
              "| conv | groups | channels (padded) | batch-parallel (padded) | fp32 1t | fp32 2t | int8 1t | int8 2t | "
              "padded 1t | padded 2t |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["tcn_convs"]:
        if r["batch"] != 64:
            continue
        ms = r["ms"]

        def cell(key):
            return f"{ms[key]:.3f}" if key in ms else "–"
        ch = f"{r['cin']}→{r['cout']}" + (f" ({r['padded_cin']}→{r['padded_cout']})"
                                          if (r["padded_cin"], r["padded_cout"]) != (r["cin"], r["cout"]) else "")
        bp = f"{'yes' if r['batch_parallel'] else 'no'} ({'yes' if r['batch_parallel_padded'] else 'no'})"
        lines.append(f"| {r['node']} | {r['groups']} | {ch} | {bp} | {cell('fp32@1t')} | {cell('fp32@2t')} | "
                     f"{cell('tcn@1t')} | {cell('tcn@2t')} | {cell('tcn_padded@1t')} | {cell('tcn_padded@2t')} |")
    if doc.get("stack_convs"):
        lines += ["", "## The 2-D stack's convolutions at batch 64: kernel ms, fp32 vs int8 (`except_attn`)", "",
                  "| conv | channels | kernel | batch-parallel | fp32 1t | int8 1t | fp32 2t | int8 2t |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in doc["stack_convs"]:
            ms = r["ms"]
            cells = " | ".join(f"{ms[k]:.3f}" if k in ms else "–"
                               for k in ("fp32@1t", "except_attn@1t", "fp32@2t", "except_attn@2t"))
            lines.append(f"| {r['node']} | {r['cin']}→{r['cout']} | {'×'.join(map(str, r['kernel']))} | "
                         f"{'yes' if r['batch_parallel'] else 'no'} | {cells} |")
    if doc.get("note"):
        lines += ["", doc["note"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    a = it.variant_parser(__doc__.split("\n\n")[0], DEFAULTS).parse_args(argv)
    from edgepose.zoo import resolve_dataset

    rec = it.machine_record()
    calls = parse_calls(a.calls)
    with tempfile.TemporaryDirectory(prefix="tcn-padding-") as tmp_s:
        tmp = Path(tmp_s)
        paths, val, padding, window_shape = build(a.checkpoint, a.work or tmp / "graphs")
        counts, elig, stages = it.graph_facts(paths, rec["output_alignment"], tmp)
        feeds = inputs_for(sorted(calls), window_shape, resolve_dataset(a.checkpoint, None, "calibration"))
        rows, run_rec = it.profile_run(paths, [1, 2], feeds, a.rounds, calls, False, stages, tmp)
        shapes = shapes_of(paths, rec["output_alignment"])
    doc = it.variant_header("benchmarks/tcn_padding.py", a, rec, run_rec) | {
        "padding": padding,
        "variants": {"fp32": {"description": "the fp32 graph", "val_dpck20_pp": None},
                     **{v: {"description": d, "val_dpck20_pp": val[v]} for v, (d, _) in VARIANTS.items()}},
        "graph_counts": counts, "eligibility": {v: {k: e[k] for k in ("int8_convs", "batch_parallel")}
                                                for v, e in elig.items()},
        "profiles": rows,
        "tcn_convs": conv_table(rows, shapes, 64) + conv_table(rows, shapes, 1),
        "stack_convs": conv_table(rows, shapes, 64, "convs")}
    it.write_results(a.out, doc, to_markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
