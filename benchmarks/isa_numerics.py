"""int8 numerics per CPU: is a ΔPCK@20 that differs between boxes the kernels, or the export's weight range?

Issue 22: the same `wiflow-half` int8 recipes scored ΔPCK@20 −0.61 / −1.37 / −4.02 pp on the
AVX-512 VNNI build machine and −2.74 / −2.00 / −5.74 pp on an AVX2-only box. Until this change,
``ort-cpu`` exports switched ONNX Runtime's ``reduce_range`` (7-bit weights) on whenever the
*exporting* CPU lacked VNNI, so an export made on the AVX2 box had other weights than one made
here, with the same file size.

This script exports every recipe twice from one snapshot of the checkpoint — 8-bit weights (this
box's old default) and 7-bit weights (what the AVX2 box's export used) — and scores both on the
clean test split against the fp32 ONNX graph with the paired bootstrap interval over test
recordings (``edgepose.stats.paired_bootstrap_delta``, as ``benchmarks/quant_table.py``). It also
records, for each 8-bit artifact, how many u8·s8 product pairs of its convolutions would leave the
int16 range (what AVX2's ``vpmaddubsw`` saturates; VNNI's ``vpdpbusd`` does not) on real test
windows, and the same for the 7-bit artifact (0 by construction). Accuracy only: no timings.

    python benchmarks/isa_numerics.py --out benchmarks/results/isa-numerics-amd-epyc [--model wiflow-half]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
from common import window_hits

#: row label → ExportRequest fields (without weight_bits); the module recipes with their ranges as calibrated,
#: the graphs issue 22 measured (before the output-aware range search became their default)
ROWS = {
    "safe minmax": dict(precision="int8", recipe="safe", calib="minmax", range_search="off"),
    "safe percentile": dict(precision="int8", recipe="safe", calib="percentile", range_search="off"),
    "global percentile": dict(precision="int8", recipe="global", calib="percentile", range_search="off"),
    # quant_table's "all-int8" row (the guard's start, always within a 100 pp budget): issue 22's "global"
    "all-int8 percentile": dict(precision="int8", calib="percentile", max_drop=100.0, range_search="off"),
}
#: the figures quoted in issue 22 (ΔPCK@20, pp), by row; the issue's "global" (−4.02 on the VNNI box) is
#: both `--recipe global` and the docs' all-int8 column (quant-table.json "int8 PTQ all-int8"): the same graph
ISSUE_AVX2 = {"safe minmax": -2.74, "safe percentile": -2.00, "global percentile": -5.74, "all-int8 percentile": -5.74}
ISSUE_VNNI = {"safe minmax": -0.61, "safe percentile": -1.37, "global percentile": -4.02, "all-int8 percentile": -4.02}
ISSUE_PARITY = {"vnni": {"mean_abs": 0.0088, "pck20": 0.526}, "avx2": {"mean_abs": 0.0096, "pck20": 0.505}}


def snapshot_checkpoint(name: str, dest: Path, rev: str | None = None) -> Path:
    """Copy the zoo checkpoint (weights + card) so every export reads the same bytes.

    ``rev``: take ``models/NAME.*`` as committed at this git revision instead of the working tree
    (the zoo is being replaced while this runs; issue 22's figures were made on an older one).
    """
    from edgepose.zoo import resolve_checkpoint

    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"{name}.safetensors"
    if out.is_file():
        return out
    if rev:
        for suffix in (".json", ".safetensors"):
            blob = subprocess.run(["git", "show", f"{rev}:models/{name}{suffix}"], check=True,
                                  capture_output=True).stdout
            out.with_suffix(suffix).write_bytes(blob)
        return out
    src = resolve_checkpoint(name)
    shutil.copyfile(src.with_suffix(".json"), out.with_suffix(".json"))
    shutil.copyfile(src, out)
    return out


def saturation(path: Path, x: np.ndarray) -> dict:
    """Per int8 conv: the share of adjacent-K u8·s8 product pairs outside int16 on ``x``.

    The QDQ graph is run unoptimised with every quantized conv input (u8) as an output; the
    conv's s8 weights are read from their initializers. Products are paired along K in the
    channels-last order ONNX Runtime's QLinearConv packs (kernel tap, then input channel), i.e.
    input channels (2j, 2j+1) of one tap. A pair beyond [−32768, 32767] is what AVX2's
    ``vpmaddubsw`` clips and VNNI's ``vpdpbusd`` does not.
    """
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    convs = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        dq_x, dq_w = producers.get(node.input[0]), producers.get(node.input[1])
        if not (dq_x and dq_w and dq_x.op_type == dq_w.op_type == "DequantizeLinear"):
            continue
        w = inits.get(dq_w.input[0])
        if w is None or w.dtype != np.int8:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        convs.append((node.name, dq_x.input[0], w.astype(np.int32), attrs))
    names = sorted({c[1] for c in convs})
    for n in names:
        model.graph.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.UINT8, None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    acts = dict(zip(names, sess.run(names, {sess.get_inputs()[0].name: x})))
    per_conv, total, over, worst = [], 0, 0, 0
    for name, act_name, w, attrs in convs:
        a = acts[act_name].astype(np.int32)
        n_pairs, n_over, peak = _conv_pairs(a, w, attrs)
        total += n_pairs
        over += n_over
        worst = max(worst, peak)
        per_conv.append({"conv": name, "weight_absmax": int(np.abs(w).max()), "pairs": n_pairs,
                         "pairs_outside_int16": n_over, "max_abs_pair": peak})
    return {"windows": len(x), "convs": len(per_conv), "pairs": total, "pairs_outside_int16": over,
            "share_outside_int16": over / total if total else 0.0, "max_abs_pair": worst,
            "int16_limit": 32767, "per_conv": per_conv}


def _conv_pairs(a: np.ndarray, w: np.ndarray, attrs: dict) -> tuple[int, int, int]:
    """(pairs, pairs outside int16, max |pair|) of one 2-D (or 1-D) conv over activations ``a``."""
    if a.ndim == 3:
        a, w = a[:, :, None, :], w[:, :, None, :]
    group = int(attrs.get("group", 1))
    kh, kw = w.shape[2:]
    sh, sw = (list(attrs.get("strides", [1, 1])) + [1, 1])[:2] if a.ndim == 4 else (1, 1)
    dh, dw = (list(attrs.get("dilations", [1, 1])) + [1, 1])[:2]
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if len(pads) == 2:
        pads = [0, pads[0], 0, pads[1]]
    # the zero point pads (the padded u8 value is the zero point, not 0): approximate with the edge-free
    # interior by padding with the activation's most common value
    zp = int(np.bincount(a.ravel()).argmax())
    a = np.pad(a, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])), constant_values=zp)
    n, c, h, wd = a.shape
    oh = (h - dh * (kh - 1) - 1) // sh + 1
    ow = (wd - dw * (kw - 1) - 1) // sw + 1
    cout, cin_g = w.shape[:2]
    if cin_g < 2:  # depthwise: ONNX Runtime's u8·s8 depthwise kernels widen to int16 per product, no pairs
        return 0, 0, 0
    pairs = over = peak = 0
    per_group = cout // group
    for g in range(group):
        ag = a[:, g * cin_g:(g + 1) * cin_g]
        wg = w[g * per_group:(g + 1) * per_group]
        even = cin_g - cin_g % 2
        for i in range(kh):
            for j in range(kw):
                patch = ag[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]
                p = patch[:, :even].reshape(n, even // 2, 2, oh * ow)
                wt = wg[:, :even, i, j].reshape(per_group, even // 2, 2)
                step = max(1, int(2e7 // max(1, p[:, :, 0].size)))
                for o in range(0, per_group, step):  # pair sums [n, out channels, pairs, positions], chunked
                    s = (p[:, None, :, 0, :] * wt[None, o:o + step, :, 0, None]
                         + p[:, None, :, 1, :] * wt[None, o:o + step, :, 1, None])
                    pairs += s.size
                    over += int(((s > 32767) | (s < -32768)).sum())
                    peak = max(peak, int(np.abs(s).max()))
    return int(pairs), int(over), int(peak)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="wiflow-half")
    ap.add_argument("--rows", default=";".join(ROWS))
    ap.add_argument("--work", type=Path, default=Path("runs/isa-numerics"))
    ap.add_argument("--sat-windows", type=int, default=8, help="test windows for the saturation count")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rev", default=None, help="git revision of models/MODEL.* to use (default: the working tree)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/isa-numerics-amd-epyc"))
    ap.add_argument("--markdown-only", action="store_true")
    a = ap.parse_args()
    if a.markdown_only:
        a.out.with_suffix(".md").write_text(to_markdown(json.loads(a.out.with_suffix(".json").read_text())))
        return
    import onnxruntime

    import edgepose as ep
    from edgepose.data import open_dataset
    from edgepose.data.split import evenly_spaced
    from edgepose.exporting import ExportRequest, export
    from edgepose.io import sha256_file, write_json
    from edgepose.runtime.cpu import cpu_flags, cpu_summary
    from edgepose.runtime.session import ort_predict, ort_session
    from edgepose.stats import paired_bootstrap_delta
    from edgepose.zoo import resolve_dataset

    ckpt = snapshot_checkpoint(a.model, a.work / "checkpoint", a.rev)
    card = ep.load_checkpoint(ckpt).card
    data = resolve_dataset(card, None, "scoring")
    ds = open_dataset(data)
    idx = ds.indices("test", clean=True)
    x, y = ds.read(idx)
    recs = ds.window_file[idx]
    torso = ds.layout.torso
    sat_x = ds.read(np.unique(evenly_spaced(idx, a.sat_windows)))[0]

    def run_export(tag: str, **kw) -> Path:
        out = a.work / tag
        have = sorted(out.glob("*.onnx")) if out.is_dir() else []
        if have:
            return have[0]
        t0 = time.perf_counter()
        (path,) = export(ExportRequest(checkpoint=ckpt, out=out, log=lambda s: None, **kw))
        print(f"  exported {tag}: {path.name} ({time.perf_counter() - t0:.0f} s)", flush=True)
        return path

    fp32 = run_export("fp32", precision="fp32")
    base = ort_predict(ort_session(fp32, threads=a.threads), x)
    base_hits = window_hits(base, y, torso)
    res = {"tool": "benchmarks/isa_numerics.py", "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "machine": {**cpu_summary(), "all_cpu_flags": sorted(f for f in cpu_flags()
                                                               if f.startswith(("avx", "amx", "fma", "f16c", "sse4")))},
           "onnxruntime": onnxruntime.__version__, "threads": a.threads,
           "checkpoint": {"name": a.model, "git_rev": a.rev, "weights_sha256": card.get("weights_sha256"),
                          "snapshot_sha256": sha256_file(ckpt), "card_sha256": sha256_file(ckpt.with_suffix(".json")),
                          "dataset_fingerprint": (card.get("dataset") or {}).get("fingerprint"),
                          "split_fingerprint": (card.get("split") or {}).get("fingerprint"),
                          "dataset_generator_version": ((card.get("dataset") or {}).get("synth") or {}).get("generator_version")},
           "dataset": str(data), "test_windows": len(idx), "test_recordings": len(np.unique(recs)),
           "fp32_pck20": float(base_hits.mean()),
           "issue_22": {"vnni_box": ISSUE_VNNI, "avx2_box": ISSUE_AVX2, "parity": ISSUE_PARITY,
                        "comparable": bool(a.rev)},
           "rows": []}
    for row in [r for r in a.rows.split(";") if r]:
        entry = {"row": row, **ROWS[row]}
        preds = {}
        for bits in ("8", "7"):
            path = run_export(f"{row.replace(' ', '-')}-w{bits}", weight_bits=bits, **ROWS[row])
            acard = json.loads(path.with_name(path.name + ".json").read_text())
            pred = ort_predict(ort_session(path, threads=a.threads), x)
            preds[bits] = pred
            hits = window_hits(pred, y, torso)
            ci = paired_bootstrap_delta(hits, base_hits, recs)
            par = acard["parity"]["vs_fp32_torch"]
            sat = saturation(path, sat_x)
            entry[f"w{bits}"] = {"file": path.name, "bytes": path.stat().st_size, "sha256": acard["sha256"],
                                 "reduce_range": acard["recipe"]["reduce_range"],
                                 "isa_portable": acard["recipe"].get("isa_portable"),
                                 "pck20": float(hits.mean()), "delta_pck20": ci.to_dict(),
                                 "parity_vs_fp32_torch": {k: par[k] for k in ("windows", "mean_abs_error", "max_abs_error",
                                                                               "reference_pck20", "candidate_pck20")},
                                 "avx2_saturation": {k: v for k, v in sat.items() if k != "per_conv"},
                                 "avx2_saturation_worst_convs": sorted(sat["per_conv"], key=lambda c: -c["pairs_outside_int16"])[:5]}
            print(f"  {row} w{bits}: {path.stat().st_size} B  PCK@20 {100 * hits.mean():.2f} %  "
                  f"Δ {ci.delta_pp:+.2f} [{ci.low_pp:+.2f}, {ci.high_pp:+.2f}] pp  parity mean {par['mean_abs_error']:.4f}  "
                  f"sat {sat['pairs_outside_int16']}/{sat['pairs']}", flush=True)
        d = np.abs(preds["8"].astype(np.float64) - preds["7"])
        entry["w8_vs_w7_outputs"] = {"mean_abs": float(d.mean()), "max_abs": float(d.max()),
                                     "p99_abs": float(np.percentile(d, 99))}
        entry["shift_7_minus_8_pp"] = entry["w7"]["delta_pck20"]["delta_pp"] - entry["w8"]["delta_pck20"]["delta_pp"]
        entry["issue_shift_avx2_minus_vnni_pp"] = (ISSUE_AVX2[row] - ISSUE_VNNI[row]) if row in ISSUE_AVX2 else None
        res["rows"].append(entry)
        write_json(a.out.with_suffix(".json"), json.loads(json.dumps(res, default=str)))
    write_json(a.out.with_suffix(".json"), json.loads(json.dumps(res, default=str)))
    a.out.with_suffix(".md").write_text(to_markdown(res))
    print(to_markdown(res))


def _issue(res: dict, row: str) -> str:
    i = res["issue_22"]
    if not i.get("comparable", True) or row not in i["vnni_box"]:
        return "—"
    return f"{i['vnni_box'][row]:+.2f} / {i['avx2_box'][row]:+.2f}"


def to_markdown(res: dict) -> str:
    m = res["machine"]
    ck = res["checkpoint"]
    lines = ["# int8 numerics per CPU: 8-bit vs 7-bit weights (issue 22)", "",
             f"Made by `benchmarks/isa_numerics.py` on {res['created']}; CPU {m.get('cpu_model')} "
             f"(flags {', '.join(res['machine']['all_cpu_flags'])}), onnxruntime {res['onnxruntime']}, "
             f"{res['threads']} threads. Checkpoint `{ck['name']}` weights {str(ck['weights_sha256'])[:12]}…, "
             f"dataset fingerprint {str(ck['dataset_fingerprint'])[:12]}… (generator v{ck['dataset_generator_version']}); "
             f"clean test split, {res['test_windows']} windows from {res['test_recordings']} recordings, "
             f"fp32 ONNX PCK@20 {100 * res['fp32_pck20']:.2f} %. ΔPCK@20 vs the fp32 ONNX graph, paired bootstrap "
             "95 % CI over test recordings. All scored on this (VNNI) box's kernels. "
             "'AVX2 pairs' = u8·s8 product pairs outside int16 on "
             f"{res['rows'][0]['w8']['avx2_saturation']['windows'] if res['rows'] else 0} test windows "
             "(what AVX2's vpmaddubsw would clip).", ""] + [f"Note: {n}" for n in res.get("notes", [])] + [
             "" if res.get("notes") else None,
             "| recipe | weights | bytes | ΔPCK@20 (pp) [95 % CI] | parity mean / max \\|Δ\\| | AVX2 pairs outside int16 | issue: VNNI box / AVX2 box |",
             "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        for bits in ("8", "7"):
            e = r[f"w{bits}"]
            d, p, s = e["delta_pck20"], e["parity_vs_fp32_torch"], e["avx2_saturation"]
            lines.append(f"| {r['row']} | {bits}-bit | {e['bytes']:,} | {d['delta_pp']:+.2f} [{d['low_pp']:+.2f}, {d['high_pp']:+.2f}] | "
                         f"{p['mean_abs_error']:.4f} / {p['max_abs_error']:.3f} | {s['pairs_outside_int16']:,} of {s['pairs']:,} | "
                         f"{_issue(res, r['row'])} |")
    lines += ["", "| recipe | ΔPCK@20 shift 7-bit − 8-bit here (pp) | issue's AVX2 − VNNI (pp) | mean / max \\|8-bit − 7-bit output\\| |",
              "|---|---|---|---|"]
    for r in res["rows"]:
        o = r["w8_vs_w7_outputs"]
        shift = r["issue_shift_avx2_minus_vnni_pp"] if res["issue_22"].get("comparable", True) else None
        lines.append(f"| {r['row']} | {r['shift_7_minus_8_pp']:+.2f} | {'—' if shift is None else f'{shift:+.2f}'} | "
                     f"{o['mean_abs']:.4f} / {o['max_abs']:.3f} |")
    return "\n".join(line for line in lines if line is not None) + "\n"


if __name__ == "__main__":
    main()
