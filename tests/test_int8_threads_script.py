"""The pure parts of ``benchmarks/int8_threads.py`` (in ``benchmarks/int8_threads_lib.py``): ORT's
QLinearConv batch-parallel rule, the conv table of a QDQ graph, the profile split, the raw-file
conversion helpers and the report renderer; plus the script's ``--eligibility`` mode end to end.
No timed assertions."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import int8_threads
import int8_threads_lib as it


@pytest.mark.parametrize("groups, cin, cout, align, ok, why", [
    (1, 270, 270, 4, False, ["Cin 270 not a multiple of 4", "Cout 270 not a multiple of 4"]),
    (1, 272, 272, 4, True, []),
    (1, 540, 270, 4, False, ["Cout 270 not a multiple of 4"]),
    (1, 540, 276, 4, True, []),
    (1, 540, 276, 8, False, ["Cout 276 not a multiple of 8"]),   # AVX2 / AVX-VNNI alignment
    (1, 8, 12, 4, False, ["Cout 12 < 16"]),
    (10, 270, 270, 4, False, ["grouped (g=10, 27 in/27 out per group), not depthwise"]),
    (17, 272, 272, 4, False, ["grouped (g=17, 16 in/16 out per group), not depthwise"]),
    (48, 48, 48, 4, True, []),                                   # depthwise, groups a multiple of 16
    (40, 40, 40, 4, False, ["depthwise with 40 groups, not a multiple of 16"]),
])
def test_batch_parallel_rule(groups, cin, cout, align, ok, why):
    assert it.batch_parallel(groups, cin, cout, out_align=align) == (ok, why)


def test_weights_must_be_int8_with_zero_points_zero():
    ok, why = it.batch_parallel(1, 272, 272, weight_int8=False, weight_zp_zero=False)
    assert not ok and why == ["weights not int8", "weight zero point not 0"]


def test_output_alignment_follows_the_cpu():
    assert it.output_alignment({"avx2", "avx512f", "avx512bw", "avx512_vnni"}) == 4
    assert it.output_alignment({"avx2", "fma", "avx_vnni"}) == 8


def _qdq_graph() -> onnx.ModelProto:
    """[1, 270, 20] → int8 pointwise 270→272 → int8 pointwise 272→272 → int8 grouped k3 (g=17) →
    int8 depthwise k3 (g=272) → float pointwise 272→270 → unsqueeze → int8 2-D 1→16 (1×3) with a
    non-zero weight zero point on one channel."""
    rng = np.random.default_rng(7)
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(arr, name))

    const("s", np.array(0.02, np.float32))
    const("z", np.array(128, np.uint8))

    def qdq(x, name):
        nodes.append(helper.make_node("QuantizeLinear", [x, "s", "z"], [f"{name}_q"]))
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", "s", "z"], [f"{name}_dq"]))
        return f"{name}_dq"

    def conv(x, name, cout, cin_g, kernel, groups=1, pads=None, int8=True, zp=None):
        shape = (cout, cin_g, *kernel)
        if int8:
            const(f"{name}_w", rng.integers(-127, 128, shape).astype(np.int8))
            const(f"{name}_ws", np.full(cout, 0.01, np.float32))
            const(f"{name}_wz", np.zeros(cout, np.int8) if zp is None else zp)
            nodes.append(helper.make_node("DequantizeLinear", [f"{name}_w", f"{name}_ws", f"{name}_wz"],
                                          [f"{name}_wd"], axis=0))
            w = f"{name}_wd"
        else:
            const(f"{name}_w", rng.standard_normal(shape).astype(np.float32))
            w = f"{name}_w"
        attrs = {"group": groups, "kernel_shape": list(kernel)}
        if pads:
            attrs["pads"] = pads
        nodes.append(helper.make_node("Conv", [x, w], [name], name=name, **attrs))
        return name

    x = conv(qdq("x", "in"), "pw_270_272", 272, 270, (1,))
    x = conv(qdq(x, "a"), "pw_272_272", 272, 272, (1,))
    x = conv(qdq(x, "b"), "grouped_g17", 272, 16, (3,), groups=17, pads=[2, 0])
    x = conv(qdq(x, "c"), "depthwise", 272, 1, (3,), groups=272, pads=[1, 1])
    x = conv(x, "float_pw", 270, 272, (1,), int8=False)
    const("axis", np.array([1], np.int64))
    nodes.append(helper.make_node("Unsqueeze", [x, "axis"], ["u"]))
    zp = np.zeros(16, np.int8)
    zp[3] = 1
    conv(qdq("u", "d"), "conv2d_1_16", 16, 1, (1, 3), pads=[0, 1, 0, 1], zp=zp)
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 270, 20])],
                          [helper.make_tensor_value_info("conv2d_1_16", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_conv_table_of_a_qdq_graph():
    rows = {r["node"]: r for r in it.conv_rows(_qdq_graph(), out_align=4)}
    assert list(rows) == ["pw_270_272", "pw_272_272", "grouped_g17", "depthwise", "float_pw", "conv2d_1_16"]
    assert rows["pw_270_272"]["why_not"] == ["Cin 270 not a multiple of 4"]
    assert rows["pw_272_272"]["batch_parallel"] and rows["pw_272_272"]["why_not"] == []
    assert rows["grouped_g17"]["why_not"] == ["grouped (g=17, 16 in/16 out per group), not depthwise"]
    assert rows["depthwise"]["batch_parallel"]
    assert not rows["float_pw"]["int8"] and rows["float_pw"]["why_not"] == ["float conv"]
    c2 = rows["conv2d_1_16"]
    assert c2["int8"] and not c2["batch_parallel"]
    assert c2["why_not"] == ["weight zero point not 0", "Cin 1 not a multiple of 4"]
    # stages from order and rank (the graph carries no module scopes)
    assert [r["stage"] for r in rows.values()] == ["tcn"] * 5 + ["convs"]
    assert c2["output_pixels"] == 270 * 20 and rows["grouped_g17"]["output_pixels"] == 20
    assert c2["min_pixels_per_task"] == -(-65536 // 48)   # 16 outputs × 1 input × 3 taps
    assert rows["grouped_g17"]["min_pixels_per_task"] == -(-65536 // (16 * 16 * 3))

    summary = it.eligibility_summary(list(rows.values()))
    assert (summary["int8_convs"], summary["batch_parallel"], summary["float_convs"]) == (5, 2, 1)
    assert sum(s["count"] for s in summary["shapes"]) == 5


def test_optimized_conv_names_map_back_to_their_stage():
    stages = {"node_conv1d_4": "tcn", "node_conv2d_13": "convs", "node_conv1d_21": "attn"}
    assert it.conv_node_stage("node_conv1d_4_token_21", stages) == "tcn"
    assert it.conv_node_stage("conv2d_13_nchwc", stages) == "convs"
    assert it.conv_node_stage("node_conv1d_21", stages) == "attn"
    assert it.conv_node_stage("node_conv1d_2_token_7", stages) == "?"


def test_profile_events_split_per_call():
    def node(ts, dur, op, name):
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur, "args": {"op_name": op}}

    events = [{"cat": "Session", "name": "model_run", "ts": 1000, "dur": 700},
              {"cat": "Session", "name": "model_run", "ts": 3000, "dur": 900},
              node(1010, 250, "QLinearConv", "c1"), node(1300, 130, "Transpose", "t"), node(1450, 37, "QLinearConv", "c2"),
              node(3020, 410, "QLinearConv", "c1"), node(3500, 90, "Transpose", "t"),
              node(2000, 999, "Transpose", "between_runs"),
              {"cat": "Node", "name": "c1_fence_before", "ts": 1005, "dur": 3, "args": {"op_name": "QLinearConv"}}]
    calls = it.per_call_times(events)
    assert len(calls) == 2
    assert calls[0][0] == pytest.approx({"QLinearConv": 0.287, "Transpose": 0.130})
    assert calls[0][1] == pytest.approx({"c1": 0.250, "t": 0.130, "c2": 0.037})
    assert calls[1][0] == pytest.approx({"QLinearConv": 0.410, "Transpose": 0.090})


def test_buckets_add_up_to_the_kernel_total():
    b = it.buckets({"QLinearConv": 23.79, "Transpose": 2.92, "QuantizeLinear": 0.17, "DequantizeLinear": 0.15,
                    "QLinearSigmoid": 3.1, "FusedMatMul": 5.3, "Softmax": 1.9, "ReduceMean": 0.41})
    assert b["conv"] == pytest.approx(23.79) and b["Q+DQ"] == pytest.approx(0.32)
    assert b["attn"] == pytest.approx(7.2) and b["other"] == pytest.approx(0.41)
    assert b["kernel"] == pytest.approx(sum(v for k, v in b.items() if k != "kernel"))


def test_summary_uses_undisturbed_rounds_only_when_there_are_three():
    vals, clean = [10.0, 11.0, 50.0, 12.0, 13.0], [True, True, False, True, False]
    assert it.summarize(vals, clean) == {"median": 11.0, "min": 10.0, "max": 12.0, "n": 3, "undisturbed_rounds": 3}
    two = it.summarize(vals, [True, False, False, True, False])
    assert two["n"] == 5 and two["median"] == 12.0 and two["undisturbed_rounds"] == 2


def test_speed_against_fp32_pairs_run_threads_and_batch():
    def row(v, t, b, ms, run="r"):
        return {"run": run, "variant": v, "threads": t, "batch": b, "wall_ms": {"median": ms}}

    rows = [row("fp32", 2, 64, 44.0), row("global", 2, 64, 55.0), row("fp32", 1, 64, 75.0), row("global", 1, 64, 50.0),
            row("global", 2, 64, 40.0, run="other")]
    it.add_speed_vs_fp32(rows)
    assert [r["speed_vs_fp32"] for r in rows] == pytest.approx([1.0, 0.8, 1.0, 1.5, None])


def test_conv_scaling_by_stage():
    rows = [{"run": "p", "variant": "v", "threads": t, "batch": 64, "conv_ms_by_stage": s}
            for t, s in ((1, {"tcn": 9.0, "convs": 15.0}), (2, {"tcn": 10.0, "convs": 10.0}))]
    got = {c["stage"]: c["speedup"] for c in it.conv_scaling(rows)}
    assert got == pytest.approx({"tcn": 0.9, "convs": 1.5})


def test_legacy_node_listing_is_summed_per_stage():
    text = ("node_conv1d_token_21               QLinearConv     956.5   1236.5 us  x0.77  [[64, 20, 540]]\n"
            "node_conv1d_1_token_25             QLinearConv    1043.5    763.5 us  x1.37  [[64, 20, 540]]\n"
            "node_conv2d_token_97               QLinearConv    1827.0   1827.0 us  x1.00  [[64, 20, 120, 1]]\n"
            "TOTAL(sum of node medians) 3.83 ms -> 3.83 ms  x1.00\n")
    got = {c["stage"]: (c["ms_1t"], c["ms_2t"]) for c in it.legacy_conv_nodes(text, "safe", "convnodes")}
    assert got == {"tcn": pytest.approx((2.0, 2.0)), "convs": pytest.approx((1.827, 1.827))}
    assert it.legacy_label("no_attn_no_qkv_fold") == "except_attn_fold" and it.legacy_label("safe") == "safe"


def test_a_transpose_model_runs(tmp_path):
    import onnxruntime as ort

    m = it.transpose_model([6, 4, 3, 5], [0, 1, 3, 2], "uint8")
    x = np.arange(360, dtype=np.uint8).reshape(6, 4, 3, 5)
    (y,) = ort.InferenceSession(m, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    assert np.array_equal(y, x.transpose(0, 1, 3, 2))


def test_eligibility_mode_of_the_script(tmp_path, capsys):
    path = tmp_path / "g.onnx"
    onnx.save(_qdq_graph(), str(path))
    assert int8_threads.main(["--eligibility", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("int8 convs batch-parallel")
    assert "of 5 int8 convs" in out and "float conv" in out


def _tiny_doc() -> dict:
    def prof(v, t, b, wall, k):
        return {"run": "profile", "variant": v, "threads": t, "batch": b, "speed_vs_fp32": 44.0 / wall,
                "wall_ms": {"median": wall, "min": wall - 1, "max": wall + 2, "n": 5, "undisturbed_rounds": 5},
                "buckets": {"conv": k / 2, "Transpose": k / 7, "Q+DQ": 0.0, "act": k / 9, "attn": k / 8,
                            "other": 0.1, "kernel": k}}

    return {"tool": "benchmarks/int8_threads.py", "created": "2026-12-04T10:00:00+00:00", "checkpoint": "wiflow-half",
            "machine": {"cpu_model": "Test CPU", "cpu_count": 2,
                        "cpu_flags": {"avx2": True, "avx512f": True, "amx_tile": False}},
            "versions": {"onnxruntime": "1.32.0"}, "note": "reduced: rounds 3 (full: 7).",
            "settings": {"output_alignment": 4},
            "runs": {"profile": {"what": "profiles", "spinning": False, "rounds": 5, "undisturbed_rounds": 5,
                                 "loadavg_before": "0.40 0.30 0.20", "loadavg_after": "1.10 0.50 0.30"}},
            "variants": {"fp32": {"description": "fp32", "val_dpck20_pp": None},
                         "except_attn": {"description": "all but attention", "val_dpck20_pp": 0.5413}},
            "profiles": [prof("fp32", 2, 64, 44.0, 45.9), prof("except_attn", 2, 64, 35.2, 37.4)],
            "graph_counts": {"fp32": {"Transpose": 5, "Conv": 44}, "except_attn": {"Transpose": 5, "QLinearConv": 42}},
            "eligibility": {"except_attn": {"int8_convs": 42, "batch_parallel": 11, "not_batch_parallel": 31,
                                            "shapes": [{"stage": "tcn", "groups": 10, "cin": 270, "cout": 270,
                                                        "kernel": [3], "count": 2, "batch_parallel": False,
                                                        "why_not": ["grouped"], "output_pixels": 20}]}}}


def test_markdown_of_a_tiny_doc():
    md = it.to_markdown(_tiny_doc())
    assert md.startswith("# int8 vs fp32 at 1 and 2 ONNX Runtime threads (issue 22)")
    assert "flags avx2, avx512f (absent: amx_tile)" in md and "ONNX Runtime 1.32.0" in md
    assert "Note: reduced: rounds 3 (full: 7)." in md
    assert "| profile | profiles | off | 5 (5) | 0.40 0.30 0.20 → 1.10 0.50 0.30 |" in md
    assert "| except_attn | all but attention | +0.54 |" in md and "| fp32 | fp32 | — |" in md
    assert "| profile | except_attn | 2 | 64 | 35.200 [34.200–37.200] | 1.25× | 37.40 | 18.70 |" in md
    assert "| except_attn | 5 | 42 | 0 |" in md
    assert "| tcn | 10 | 270 → 270 | 3 | 2 | 20 | no | grouped |" in md
    assert "One Transpose node" not in md
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[:3] == ["## Runs", "## Graphs", "## Wall time and per-op kernel time"]


@pytest.mark.parametrize("name", ["int8-threads-amd-epyc-avx512", "int8-threads-intel-xeon-amx",
                                  "int8-threads-amd-epyc-v1model"])
def test_the_committed_results_have_the_documented_shape(name):
    """Every figure of a committed document carries its run, and every run its flags and ORT version; a
    converted document (not re-measured) says so in its note."""
    import json

    path = Path(__file__).resolve().parents[1] / f"benchmarks/results/{name}.json"
    doc = json.loads(path.read_text())
    assert doc["machine"]["cpu_flags"] and doc["versions"]["onnxruntime"]
    assert ("measured" in doc) == doc["note"].startswith("Converted, not re-measured")
    for run in doc["runs"].values():
        assert run["cpu_flags"] and run["onnxruntime"] and "loadavg_before" in run
    for row in doc["profiles"] + doc.get("conv_scaling", []):
        assert row["run"] in doc["runs"]
    safe = doc["eligibility"]["safe"]
    assert safe["batch_parallel"] + safe["not_batch_parallel"] == safe["int8_convs"]
    if "measured" in doc:  # converted: the rule agrees with the kernels the first investigation recorded
        assert safe["batch_parallel"] == safe["recorded_batch_parallel"]
