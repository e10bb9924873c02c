"""The report's verdict rule on hand-made rows: win, tie (in words), accuracy gate, CI wording, targets."""

from __future__ import annotations

from edgepose.benchmarking.machine import describe_machine
from edgepose.benchmarking.paired import spread
from edgepose.reporting.build import verdicts
from edgepose.reporting.verdict import accuracy_of, choose, sentence, verdict_choices


def _row(label, precision, ratios, ci, mb, kind="onnx", target=None, backend="ort-cpu"):
    """A bench row with paired ratios at batch 1 and a ΔPCK@20 interval ``ci = (delta, low, high)``."""
    d, lo, hi = ci
    return {"artifact": f"{label}.onnx", "label": label, "kind": kind, "precision": precision, "method": "x",
            "target": target, "backend": backend, "bytes": int(mb * 1e6), "size_mb": mb,
            "latency": {"1": {"p50_ms": 1.0 / spread(ratios)["median"], "p99_ms": 2.0}},
            "speed_vs_fp32_onnx": {"1": spread(ratios)},
            "accuracy": {"clean": {"pck": {"0.2": 0.5 + d / 100}}},
            "delta_pck_pp": {"0.2": d},
            "delta_pck20_ci": {"delta_pp": d, "low_pp": lo, "high_pp": hi, "recordings": 14}}


FP32 = _row("fp32", "fp32", [1.0] * 5, (0.0, 0.0, 0.0), 3.4)


def test_clear_win_ships_the_faster_artifact():
    int8 = _row("int8", "int8", [1.5, 1.6, 1.55, 1.58, 1.52], (-0.1, -0.4, 0.2), 1.0)
    c = choose([FP32, int8], "1")
    assert c.row is int8 and c.outcome == "win"
    text = sentence(c, "box")
    assert "ship **int8**" in text and "clear speed win" in text and "tie" not in text


def test_overlapping_spreads_are_a_tie_said_in_words_and_broken_by_size():
    int8 = _row("int8", "int8", [0.95, 1.02, 1.08, 0.99, 1.04], (0.1, -0.3, 0.5), 1.0)
    c = choose([FP32, int8], "1")
    assert c.outcome == "tie" and c.broken_by == "size"
    assert c.row is int8  # same accuracy class, smaller
    assert "speed tie with fp32" in sentence(c, "box") and "broken by size" in sentence(c, "box")


def test_tie_broken_by_accuracy_before_size():
    better = _row("fp16", "fp16", [0.98, 1.0, 1.01, 0.99, 1.0], (0.8, 0.2, 1.4), 1.7)   # CI above 0
    smaller = _row("int8", "int8", [0.99, 1.01, 1.02, 1.0, 0.98], (0.1, -0.3, 0.5), 1.0)
    c = choose([FP32, better, smaller], "1")
    assert c.row is better and c.broken_by == "accuracy"
    assert "broken by accuracy" in sentence(c, "box")


def test_accuracy_gate_excludes_a_fast_but_worse_artifact():
    bad = _row("int8 global", "int8", [2.0, 2.1, 2.05, 2.2, 1.9], (-0.9, -1.6, -0.2), 1.0)  # low end below the gate
    c = choose([FP32, bad], "1")
    assert c.row is FP32
    assert choose([FP32, bad], "1", max_drop_pp=2.0).row is bad


def test_interval_wording_never_claims_more_accurate_when_it_spans_zero():
    spans = accuracy_of(_row("a", "int8", [1.0], (0.3, -0.2, 0.8), 1.0))
    assert spans.eligible and spans.words.startswith("as accurate as fp32") and "more accurate" not in spans.words
    above = accuracy_of(_row("b", "int8", [1.0], (0.6, 0.1, 1.1), 1.0))
    assert above.words.startswith("more accurate than fp32")
    below = accuracy_of(_row("c", "int8", [1.0], (-0.3, -0.45, -0.1), 1.0))
    assert below.eligible and below.words.startswith("less accurate than fp32")
    outside = accuracy_of(_row("d", "int8", [1.0], (-0.3, -0.55, -0.1), 1.0))  # low end past the 0.5 pp gate
    assert not outside.eligible and "outside the 0.5 pp gate" in outside.words


def test_one_choice_per_batch_and_per_target_when_both_exist():
    doc = {"batches": [1], "rows": [
        FP32,
        _row("int8 cpu", "int8", [1.5] * 5, (0.0, -0.2, 0.2), 1.0, target="ort-cpu"),
        _row("int8 trt", "int8", [1.2] * 5, (0.0, -0.2, 0.2), 1.0, target="tensorrt"),
    ], "device": "cpu", "threads": 2,
        "machine": {"cpu_model": "CPU", "cpu_count": 2, "gpu": None}}
    choices = verdict_choices(doc)
    assert [(c.target, c.row["label"]) for c in choices] == [("ort-cpu", "int8 cpu"), ("tensorrt", "int8 trt")]
    lines = verdicts([doc])
    assert len(lines) == 2 and all(line.count("ship **") == 1 for line in lines)


def test_machine_line_is_readable_text():
    line = describe_machine({"cpu_model": "AMD EPYC", "arch": "x86_64", "cpu_count": 2,
                             "cpu_flags": {"avx2": True, "avx512_vnni": True, "amx_int8": False},
                             "versions": {"python": "3.11", "onnxruntime": "1.2"}}, threads=2, spinning=False)
    assert "{" not in line and "'" not in line
    assert "avx512_vnni" in line and "amx_int8" not in line and "onnxruntime 1.2" in line and "threads 2" in line


def test_verdict_names_a_faster_artifact_that_failed_the_gate():
    bad = _row("int8", "int8", [1.3] * 5, (-1.1, -2.7, 0.4), 1.0)
    c = choose([FP32, bad], "1")
    assert c.row is FP32 and [g["label"] for g, _ in c.gated_out] == ["int8"]
    text = sentence(c, "box")
    assert "outside the accuracy gate: int8" in text and "CI low -2.70 pp" in text


def test_too_few_undisturbed_rounds_is_a_tie_said_in_words():
    """One or two rounds left after disturbed ones are dropped: no IQR, so no clear win (a real report
    once called fp32 'clear of the next fastest' from a single round)."""
    fp32 = _row("fp32", "fp32", [1.0], (0.0, 0.0, 0.0), 3.4)
    int8 = _row("int8", "int8", [1.4], (-0.1, -0.4, 0.2), 1.0)
    c = choose([fp32, int8], "1")
    assert c.outcome == "tie" and c.few_rounds == 1 and c.row is int8  # same accuracy class, smaller
    text = sentence(c, "box")
    assert "only 1 undisturbed paired round: too few to tell speeds apart" in text and "clear" not in text
    two = choose([_row("fp32", "fp32", [1.0, 1.0], (0.0, 0.0, 0.0), 3.4),
                  _row("int8", "int8", [1.5, 1.6], (-0.1, -0.4, 0.2), 1.0)], "1")
    assert two.outcome == "tie" and two.few_rounds == 2
    three = choose([_row("fp32", "fp32", [1.0] * 3, (0.0, 0.0, 0.0), 3.4),
                    _row("int8", "int8", [1.5, 1.6, 1.55], (-0.1, -0.4, 0.2), 1.0)], "1")
    assert three.outcome == "win" and three.few_rounds is None


def test_tie_broken_by_accuracy_then_size_names_only_the_size_peers():
    worse = _row("fp16", "fp16", [1.0, 1.01, 0.99, 1.0, 1.0], (-0.07, -0.14, -0.01), 1.7)  # CI wholly below 0
    twin = _row("fp32 torch", "fp32", [0.99, 1.0, 1.01, 1.0, 1.0], (0.0, 0.0, 0.0), 3.5, kind="torch")
    c = choose([FP32, worse, twin], "1")
    assert c.row is FP32 and c.broken_by == "accuracy, then size" and c.size_peers == [twin]
    text = sentence(c, "box")
    assert "broken by accuracy, then by size (3.40 MB vs 3.50 MB)" in text and "1.70" not in text


def test_rounds_that_were_all_disturbed_count_as_none():
    fp32 = _row("fp32", "fp32", [1.0] * 5, (0.0, 0.0, 0.0), 3.4)
    int8 = _row("int8", "int8", [1.5, 1.6, 1.55, 1.58, 1.52], (-0.1, -0.4, 0.2), 1.0)
    for r in (fp32, int8):
        r["speed_vs_fp32_onnx"]["1"]["all_rounds_disturbed"] = True
    c = choose([fp32, int8], "1")
    assert c.outcome == "tie" and c.few_rounds == 0
