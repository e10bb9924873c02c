"""The pure parts of ``benchmarks/int8_threads.py`` (issue 22): ONNX Runtime's QLinearConv
batch-parallel rule, the conv table of a QDQ graph, the per-call split of ORT profiles, the op
buckets, round statistics and the Markdown rendering of a results document. No timing here; the
tests in ``tests/test_int8_threads_script.py`` run these functions on small synthetic graphs.
"""

from __future__ import annotations

import bisect
import math
import re
import statistics
from collections import defaultdict

import numpy as np

#: variant name → what it is (the order of every table); the legacy labels of the first
#: investigation (``/tmp/int8gap``) are kept for the graphs this script does not build itself
VARIANTS = {
    "fp32": "fp32 export (batch norms folded)",
    "safe": "int8 PTQ, default recipe `safe` (convs int8 except the attention q/k/v and the last conv; SiLU float "
            "inside the Q/DQ pairs)",
    "global": "int8 PTQ, `--recipe global`: every op ONNX Runtime can quantize, attention included",
    "all": "int8 on every quantization group (probe-built; same graph shape as `global`)",
    "all_no_attn": "int8 on every group except `attn_w`/`attn_h` (their q/k/v convs int8)",
    "except_attn": "int8 on every quantization group except `attn_w`/`attn_h` and their q/k/v convs (SiLU as "
                   "QLinearSigmoid/QLinearMul, residual adds, decoder, pool int8)",
    "conv_silu": "int8 conv groups with their SiLU, residual adds float",
    "conv_only": "int8 convs only, SiLU float (ORT fuses it to QuickGelu)",
}
#: op types counted in ONNX Runtime's optimized graph
COUNTED_OPS = ("Transpose", "QLinearConv", "Conv", "QuantizeLinear", "DequantizeLinear", "QLinearMatMul",
               "FusedMatMul", "QLinearSigmoid", "Sigmoid", "QuickGelu")
#: profile column → op types summed into it
BUCKETS = {
    "conv": ("Conv", "FusedConv", "QLinearConv"),
    "Transpose": ("Transpose",),
    "Q+DQ": ("QuantizeLinear", "DequantizeLinear"),
    "act": ("QuickGelu", "Sigmoid", "Mul", "QLinearSigmoid", "QLinearMul", "Add", "QLinearAdd"),
    "attn": ("FusedMatMul", "MatMul", "QLinearMatMul", "Softmax", "QLinearSoftmax"),
}
#: model stages in graph order (see :func:`conv_stages_of`)
STAGES = ("tcn", "convs", "attn", "decoder")
#: a round is *disturbed* when other processes used more than this fraction of one CPU during it
DISTURBED = 0.15


def output_alignment(flags) -> int:
    """The output-channel multiple ONNX Runtime's x86 symmetric int8 conv kernels need: 4 with
    AVX-512 (F and BW: MLAS's AVX-512 core kernels), 8 with AVX2 or AVX-VNNI only."""
    return 4 if {"avx512f", "avx512bw"} <= set(flags) else 8


def batch_parallel(groups: int, cin: int, cout: int, weight_int8: bool = True, weight_zp_zero: bool = True,
                   out_align: int = 4) -> tuple[bool, list[str]]:
    """Whether a QLinearConv takes ONNX Runtime's batch-parallel (symmetric indirect) path on x86,
    and every reason it does not. ``cin``/``cout`` are the conv's total channels.

    The rule: int8 weights whose zero points are all 0, and either one group with Cout ≥ 16,
    Cin a multiple of 4 and Cout a multiple of ``out_align``, or a depthwise conv (one input and
    one output channel per group) with a multiple of 16 groups. Any other QLinearConv runs the
    images of a batch one after another and splits only each image's output pixels."""
    why = []
    if not weight_int8:
        why.append("weights not int8")
    if not weight_zp_zero:
        why.append("weight zero point not 0")
    if groups > 1:
        if not (cin == groups and cout == groups):
            why.append(f"grouped (g={groups}, {cin // groups} in/{cout // groups} out per group), not depthwise")
        elif groups % 16:
            why.append(f"depthwise with {groups} groups, not a multiple of 16")
    else:
        if cout < 16:
            why.append(f"Cout {cout} < 16")
        if cin % 4:
            why.append(f"Cin {cin} not a multiple of 4")
        if cout % out_align:
            why.append(f"Cout {cout} not a multiple of {out_align}")
    return not why, why


def _attr(node, name: str, default):
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _weight_name(node, init: dict, producer: dict) -> tuple[str | None, object]:
    """The initializer holding a conv's weights (behind a DequantizeLinear or not) and that DQ node."""
    w = node.input[1]
    dq = producer.get(w)
    if dq is not None and dq.op_type == "DequantizeLinear" and dq.input[0] in init:
        return dq.input[0], dq
    return (w if w in init else None), None


def conv_stages_of(proto) -> dict[str, str]:
    """Conv node name → model stage: ``tcn`` (1-D convs before the 2-D stack), ``convs`` (the 2-D
    stack), ``attn`` (1-D q/k/v convs after it), ``decoder`` (2-D convs after the attention); from
    the module scopes when the graph carries them, else from the convs' order and weight rank."""
    from edgepose.quantization.recipes import node_module_path

    g = proto.graph
    init = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    out, seen_2d, seen_attn = {}, False, False
    for n in g.node:
        if n.op_type != "Conv":
            continue
        path = node_module_path(n)
        w, _ = _weight_name(n, init, producer)
        rank = len(init[w].dims) if w else 0
        if path:
            stage = path.split(".", 1)[0]
            stage = "attn" if stage.startswith("attn") else stage
        elif rank == 3 and not seen_2d:
            stage = "tcn"
        elif rank == 4 and not seen_attn:
            stage = "convs"
        elif rank == 3:
            stage = "attn"
        else:
            stage = "decoder"
        seen_2d |= stage == "convs"
        seen_attn |= stage == "attn"
        out[n.name] = stage
    return out


def conv_rows(proto, out_align: int = 4) -> list[dict]:
    """One row per Conv of a QDQ graph: its stage and shape, whether it is int8 (weights through a
    DequantizeLinear), the batch-parallel verdict and its reasons, output pixels per image and the
    smallest pixel block ORT gives one task (64 Ki weight-MACs) when it is not batch-parallel."""
    import onnx
    from onnx import numpy_helper

    try:
        inferred = onnx.shape_inference.infer_shapes(proto)
    except Exception:  # noqa: BLE001 - shapes are a nicety
        inferred = proto
    g = inferred.graph
    init = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    shapes = {v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
              for v in list(g.value_info) + list(g.output)}
    stages = conv_stages_of(proto)
    rows = []
    for n in g.node:
        if n.op_type != "Conv":
            continue
        w_name, dq = _weight_name(n, init, producer)
        if w_name is None:
            continue
        w = init[w_name]
        quant = dq is not None
        zp = None
        if quant and len(dq.input) > 2 and dq.input[2] in init:
            zp = numpy_helper.to_array(init[dq.input[2]])
        w_int8 = quant and w.data_type == onnx.TensorProto.INT8
        groups = _attr(n, "group", 1)
        cout, cin = int(w.dims[0]), int(w.dims[1]) * groups
        kernel = [int(d) for d in w.dims[2:]]
        ok, why = batch_parallel(groups, cin, cout, w_int8, bool(zp is None or np.all(zp == 0)), out_align)
        spatial = (shapes.get(n.output[0]) or [])[2:]
        rows.append({"node": n.name, "stage": stages.get(n.name, "?"), "int8": quant, "groups": groups, "cin": cin,
                     "cout": cout, "kernel": kernel, "batch_parallel": quant and ok,
                     "why_not": why if quant else ["float conv"],
                     "output_pixels": math.prod(spatial) if spatial and all(spatial) else None,
                     "min_pixels_per_task": math.ceil(65536 / ((cout // groups) * (cin // groups) * math.prod(kernel)))})
    return rows


def eligibility_summary(rows: list[dict]) -> dict:
    """Counts of int8 convs and of those ORT can batch-parallelise, and the int8 conv shapes."""
    shapes: dict[tuple, dict] = {}
    for r in rows:
        if r["int8"]:
            key = (r["stage"], r["groups"], r["cin"], r["cout"], tuple(r["kernel"]))
            s = shapes.setdefault(key, {k: r[k] for k in ("stage", "groups", "cin", "cout", "kernel", "batch_parallel",
                                                          "why_not", "output_pixels", "min_pixels_per_task")} | {"count": 0})
            s["count"] += 1
    int8 = [r for r in rows if r["int8"]]
    return {"int8_convs": len(int8), "batch_parallel": sum(r["batch_parallel"] for r in int8),
            "not_batch_parallel": sum(not r["batch_parallel"] for r in int8),
            "float_convs": len(rows) - len(int8), "shapes": list(shapes.values()), "rows": rows}


def base_name(node: str) -> str:
    """A node name without what ORT adds when it rewrites a node (``_token_N``, ``_nchwc``) and the
    exporter's ``node_`` prefix."""
    base = re.sub(r"_nchwc$", "", re.sub(r"(_token_\d+)+$", "", node))
    return base.removeprefix("node_")


def conv_node_stage(node: str, stages: dict[str, str]) -> str:
    """The stage of a (fused, renamed) conv of ORT's optimized graph, from the exported graph's
    conv stages (:func:`conv_stages_of`); ``?`` when the name cannot be traced."""
    by_base = {base_name(n): s for n, s in stages.items()}
    return stages.get(node) or by_base.get(base_name(node), "?")


def per_call_times(events: list[dict]) -> list[tuple[dict[str, float], dict[str, float]]]:
    """ORT profile events → per ``model_run`` call, in order: ({op: ms}, {node: ms}) of kernel time."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])
    starts = [r["ts"] for r in runs]
    out = [(defaultdict(float), defaultdict(float)) for _ in runs]
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        i = bisect.bisect_right(starts, e["ts"]) - 1
        if i < 0 or e["ts"] > runs[i]["ts"] + runs[i]["dur"]:
            continue
        out[i][0][e.get("args", {}).get("op_name", "?")] += e["dur"] / 1e3
        out[i][1][e["name"][: -len("_kernel_time")]] += e["dur"] / 1e3
    return [(dict(a), dict(b)) for a, b in out]


def buckets(ops_ms: dict[str, float]) -> dict[str, float]:
    """Per-op times summed into :data:`BUCKETS`, the rest as ``other``, and ``kernel`` (all)."""
    out = {k: sum(ops_ms.get(o, 0.0) for o in ops) for k, ops in BUCKETS.items()}
    total = sum(ops_ms.values())
    out["other"] = total - sum(out.values())
    out["kernel"] = total
    return out


def summarize(values: list[float], clean: list[bool]) -> dict:
    """Median/min/max over the undisturbed rounds when at least 3 exist, else over all rounds."""
    kept = [v for v, ok in zip(values, clean) if ok]
    vals = sorted(kept if len(kept) >= 3 else values)
    return {"median": statistics.median(vals), "min": vals[0], "max": vals[-1], "n": len(vals),
            "undisturbed_rounds": len(kept)}


def add_speed_vs_fp32(rows: list[dict]) -> None:
    """``speed_vs_fp32`` = fp32 median wall time / the row's, for rows of the same run, threads, batch."""
    ref = {(r.get("run"), r["threads"], r["batch"]): r["wall_ms"]["median"] for r in rows if r["variant"] == "fp32"}
    for r in rows:
        base = ref.get((r.get("run"), r["threads"], r["batch"]))
        r["speed_vs_fp32"] = base / r["wall_ms"]["median"] if base else None


def conv_scaling(rows: list[dict], batch: int = 64) -> list[dict]:
    """Conv time per stage at 1 → 2 threads, from the profile rows at ``batch``."""
    by = {(r["run"], r["variant"], r["threads"]): r for r in rows if r["batch"] == batch}
    out = []
    for (run, v, t), one in by.items():
        two = by.get((run, v, 2))
        if t != 1 or two is None:
            continue
        for s in [s for s in STAGES if s in one["conv_ms_by_stage"]]:
            a, b = one["conv_ms_by_stage"][s], two["conv_ms_by_stage"].get(s)
            if a and b:
                out.append({"run": run, "variant": v, "stage": s, "ms_1t": a, "ms_2t": b, "speedup": a / b})
    return out


def transpose_model(shape: list[int], perm: list[int], dtype: str) -> bytes:
    from onnx import TensorProto, helper

    t = TensorProto.UINT8 if dtype == "uint8" else TensorProto.FLOAT
    g = helper.make_graph([helper.make_node("Transpose", ["x"], ["y"], perm=perm)], "t",
                          [helper.make_tensor_value_info("x", t, shape)],
                          [helper.make_tensor_value_info("y", t, [shape[p] for p in perm])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()



# --------------------------------------------------------------------------- the first investigation's raw files

LEGACY_NAMES = {"no_attn_no_qkv": "except_attn"}


def legacy_label(label: str) -> str:
    base, fold = (label[:-5], "_fold") if label.endswith("_fold") else (label, "")
    return LEGACY_NAMES.get(base, base) + fold


def legacy_profiles(raw: dict, run: str) -> list[dict]:
    rows = []
    for r in raw["results"]:
        ops = {k: v["median"] for k, v in r["ops_ms"].items()}
        rows.append({"run": run, "variant": legacy_label(r["label"]), "threads": r["threads"], "batch": r["batch"],
                     "wall_ms": {k: r["wall_ms"][k] for k in ("median", "min", "max", "n")}
                     | {"undisturbed_rounds": r["wall_ms"]["clean_rounds"]},
                     "ops_ms": ops, "buckets": buckets(ops)})
    add_speed_vs_fp32(rows)
    return rows


def legacy_run(raw: dict, what: str, source: str) -> dict:
    clean = [not x["disturbed"] for x in raw["rounds"]]
    return {"what": what, "source": source, "cpu_flags": raw["cpu_flags"], "onnxruntime": raw["ort"],
            "spinning": True, "rounds": len(clean), "undisturbed_rounds": sum(clean),
            "max_other_cpu": max(x["other_cpu"] for x in raw["rounds"]), "calls_per_round": raw["calls_per_round"],
            "loadavg_before": " ".join(raw["loadavg_before"].split()[:3]),
            "loadavg_after": " ".join(raw["loadavg_after"].split()[:3])}


def legacy_conv_nodes(text: str, variant: str, run: str) -> list[dict]:
    """Per-stage sums of the per-node QLinearConv medians in a ``convnodes.py`` listing (conv1d nodes
    before the first conv2d node are the TCN, conv2d nodes the 2-D stack)."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for name, a, b in re.findall(r"^(node_conv[12]d\S*)\s+QLinearConv\s+([\d.]+)\s+([\d.]+) us", text, re.MULTILINE):
        stage = "tcn" if "conv1d" in name and "convs" not in sums else ("convs" if "conv2d" in name else "attn")
        sums[stage][0] += float(a) / 1e3
        sums[stage][1] += float(b) / 1e3
    return [{"run": run, "variant": variant, "stage": s, "ms_1t": a, "ms_2t": b, "speedup": a / b}
            for s, (a, b) in sums.items()]


def flags_text(flags: dict) -> str:
    on = [f for f, v in flags.items() if v]
    off = [f for f, v in flags.items() if not v]
    return ", ".join(on) + (f" (absent: {', '.join(off)})" if off else "")


def _table(head: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(map(str, r)) + " |"
                                                                        for r in rows]


def to_markdown(doc: dict) -> str:
    """The rendering of one results document (every number from ``doc``)."""
    m = doc["machine"]
    lines = ["# int8 vs fp32 at 1 and 2 ONNX Runtime threads (issue 22)", "",
             (f"Written by `{doc['tool']}` on {doc['created']}; checkpoint `{doc['checkpoint']}`; CPU "
              f"{m.get('cpu_model')} ({m.get('cpu_count')} logical cores), flags {flags_text(m['cpu_flags'])}; ONNX "
              f"Runtime {doc['versions']['onnxruntime']}."), ""]
    if doc.get("note"):
        lines += [f"Note: {doc['note']}", ""]
    lines += ["## Runs", ""]
    lines += _table(["run", "what", "intra-op spinning", "rounds (undisturbed)", "load average before → after"],
                    [[k, r["what"], {True: "on", False: "off"}.get(r.get("spinning"), r.get("spinning") or "?"),
                      f"{r.get('rounds', '—')} ({r.get('undisturbed_rounds', '—')})",
                      f"{r.get('loadavg_before') or '—'} → {r.get('loadavg_after') or '—'}"]
                     for k, r in doc["runs"].items()])
    names = [v for v in doc["variants"]]
    lines += ["", "## Graphs", ""]
    lines += _table(["graph", "what", "val ΔPCK@20 (pp)"],
                    [[v, e["description"], "—" if e.get("val_dpck20_pp") is None else f"{e['val_dpck20_pp']:+.2f}"]
                     for v, e in doc["variants"].items()])
    lines += ["", "## Wall time and per-op kernel time", "",
              ("Wall = unprofiled session, median [min–max] ms per call over the undisturbed rounds; kernel columns "
               "= ORT profiler, ms per call (median per op; kernel = their sum); conv = Conv + FusedConv + QLinearConv; "
               "act = SiLU/residual ops (float or QLinear); attn = (Fused|QLinear)MatMul + Softmax."), ""]
    order = {v: i for i, v in enumerate(names)}
    rows = sorted(doc["profiles"], key=lambda p: (list(doc["runs"]).index(p["run"]), p["batch"], p["threads"],
                                                  order.get(p["variant"], 99)))
    lines += _table(["run", "graph", "thr", "batch", "wall ms", "vs fp32", "kernel", "conv", "Transpose", "Q+DQ",
                     "act", "attn"],
                    [[p["run"], p["variant"], p["threads"], p["batch"],
                      f"{p['wall_ms']['median']:.3f} [{p['wall_ms']['min']:.3f}–{p['wall_ms']['max']:.3f}]",
                      f"{p['speed_vs_fp32']:.2f}×"] + [f"{p['buckets'][k]:.2f}" for k in
                                                       ("kernel", "conv", "Transpose", "Q+DQ", "act", "attn")]
                     for p in rows])
    if doc.get("graph_counts"):
        lines += ["", "## ONNX Runtime's optimized graph (node counts)", ""]
        lines += _table(["graph"] + list(COUNTED_OPS),
                        [[v] + [c.get(o, 0) for o in COUNTED_OPS] for v, c in doc["graph_counts"].items()])
    lines += ["", "## QLinearConv batch-parallel eligibility", "",
              f"Output-channel alignment on this CPU: {doc['settings']['output_alignment']}.", ""]
    lines += _table(["graph", "int8 convs", "batch-parallel", "not"],
                    [[v, e["int8_convs"], e["batch_parallel"], e["not_batch_parallel"]]
                     for v, e in doc["eligibility"].items()])
    for v, e in doc["eligibility"].items():
        lines += ["", f"Int8 conv shapes of `{v}`:", ""]
        lines += _table(["stage", "groups", "Cin → Cout", "kernel", "convs", "px/image", "batch-parallel", "why not"],
                        [[s["stage"], s["groups"], f"{s['cin']} → {s['cout']}", "×".join(map(str, s["kernel"])),
                          s["count"], s["output_pixels"] or "?", "yes" if s["batch_parallel"] else "no",
                          "; ".join(s["why_not"]) or "—"] for s in e["shapes"]])
    if doc.get("conv_scaling"):
        lines += ["", "## Conv time by model stage, 1 → 2 threads (batch 64, ms per call)", ""]
        lines += _table(["run", "graph", "stage", "1 thr", "2 thr", "speed-up"],
                        [[c["run"], c["variant"], c["stage"], f"{c['ms_1t']:.2f}", f"{c['ms_2t']:.2f}",
                          f"×{c['speedup']:.2f}"] for c in doc["conv_scaling"]])
    if doc.get("micro_transpose"):
        lines += ["", "## One Transpose node (µs per call, median of paired rounds)", ""]
        keys = [k for k in ("1t", "1t_spin", "2t", "2t_spin") if k in doc["micro_transpose"][0]["us"]]
        lines += _table(["shape", "perm", "dtype"] + [k.replace("_spin", " spinning") for k in keys]
                        + ["2t ÷ 1t (spin off)", "2t ÷ 1t (spin on)"],
                        [[r["shape"], r["perm"], r["dtype"]] + [f"{r['us'][k]:.0f}" for k in keys]
                         + [f"{r['slowdown_2t']:.1f}×", f"{r['slowdown_2t_spin']:.1f}×"]
                         for r in doc["micro_transpose"]])
    if doc.get("micro_conv"):
        lines += ["", "## One QDQ convolution (QLinearConv kernel µs per call)", ""]
        lines += _table(["conv", "batch", "1 thr", "2 thr", "speed-up"],
                        [[r["case"], r["batch"], f"{r['us_1t']:.0f}", f"{r['us_2t']:.0f}", f"×{r['speedup_2t']:.2f}"]
                         for r in doc["micro_conv"]])
    return "\n".join(lines) + "\n"
