"""The report's verdict rule on hand-made rows: win, tie and undecided (in words), accuracy gate and rank, CI
wording, targets."""

from __future__ import annotations

from edgepose.benchmarking.machine import describe_machine
from edgepose.benchmarking.paired import spread
from edgepose.reporting.build import verdicts
from edgepose.reporting.verdict import accuracy_of, choose, recordings_to_show, sentence, verdict_choices


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


def test_overlapping_spreads_are_a_tie_that_names_the_undecided_pair():
    int8 = _row("int8", "int8", [0.95, 1.02, 1.08, 0.99, 1.04], (0.1, -0.3, 0.5), 1.0)
    c = choose([FP32, int8], "1")
    assert c.outcome == "tie" and c.broken_by == "accuracy"
    assert c.row is FP32  # the higher lower end of its interval (0 against −0.3)
    text = sentence(c, "box")
    assert "speed undecided, a tie: int8 on ort-cpu at 1.02× (IQR 0.99–1.04) and fp32 on ort-cpu at 1.00× " \
           "(IQR 1.00–1.00) overlap over 5 undisturbed paired rounds" in text
    assert "more undisturbed rounds would decide it" in text and "--time-budget" in text


def test_a_tie_between_equally_accurate_artifacts_is_broken_by_size():
    int8 = _row("int8", "int8", [0.95, 1.02, 1.08, 0.99, 1.04], (0.1, 0.0, 0.5), 1.0)
    c = choose([FP32, int8], "1")
    assert c.outcome == "tie" and c.broken_by == "size" and c.row is int8
    assert "picked by size (1.00 MB vs 3.40 MB)" in sentence(c, "box")


def test_tie_broken_by_accuracy_before_size():
    better = _row("fp16", "fp16", [0.98, 1.0, 1.01, 0.99, 1.0], (0.8, 0.2, 1.4), 1.7)   # CI above 0
    smaller = _row("int8", "int8", [0.99, 1.01, 1.02, 1.0, 0.98], (0.1, -0.3, 0.5), 1.0)
    c = choose([FP32, better, smaller], "1")
    assert c.row is better and c.broken_by == "accuracy"
    assert "picked by accuracy" in sentence(c, "box")


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


def test_a_gated_out_artifact_whose_point_estimate_is_inside_says_how_many_recordings_would_show_it():
    """The first v2 zoo's main-job case (AMD box): int8 −0.25 [−0.91, +0.41] is faster and its point estimate within the
    0.5 pp gate, its interval too wide; (0.66 / 0.25)² ≈ 7.0× the test recordings would show it."""
    wide = _row("int8 wide", "int8", [1.26] * 5, (-0.25, -0.91, 0.41), 1.7)
    lossy = _row("int8 lossy", "int8", [1.3] * 5, (-1.1, -2.7, 0.4), 1.0)
    c = choose([FP32, wide, lossy], "1")
    assert c.row is FP32 and {g["label"] for g, _ in c.gated_out} == {"int8 wide", "int8 lossy"}
    text = sentence(c, "box")
    part = text.split("int8 wide on ort-cpu")[1].split("int8 lossy on ort-cpu")[0]
    assert "point estimate -0.25 pp is inside the gate" in part and "(±0.66 pp)" in part
    assert "about 7.0× the 14 test recordings" in part
    # a point estimate outside the gate: more data would confirm the loss, nothing is promised
    assert "inside the gate" not in text.split("int8 lossy on ort-cpu")[1]
    assert abs(recordings_to_show({"delta_pp": -0.25, "low_pp": -0.91, "high_pp": 0.41}) - (0.66 / 0.25) ** 2) < 1e-9
    # the factor follows the gate it was chosen under; an interval that clears the gate needs nothing
    assert abs(recordings_to_show({"delta_pp": -0.25, "low_pp": -0.91, "high_pp": 0.41}, 0.3) - (0.66 / 0.05) ** 2) < 1e-6
    assert recordings_to_show({"delta_pp": -0.1, "low_pp": -0.3, "high_pp": 0.1}) is None
    assert recordings_to_show({"delta_pp": -0.6, "low_pp": -0.9, "high_pp": -0.3}) is None
    c3 = choose([FP32, wide], "1", max_drop_pp=0.3)
    assert "about 174.2× the 14 test recordings" in sentence(c3, "box")


def test_too_few_undisturbed_rounds_is_undecided_said_in_words():
    """One or two rounds left after disturbed ones are dropped: no IQR, so no clear win (a real report
    once called fp32 'clear of the next fastest' from a single round)."""
    fp32 = _row("fp32", "fp32", [1.0], (0.0, 0.0, 0.0), 3.4)
    int8 = _row("int8", "int8", [1.4], (-0.1, -0.4, 0.2), 1.0)
    c = choose([fp32, int8], "1")
    assert c.outcome == "undecided" and c.few_rounds == 1 and c.row is fp32  # its interval's lower end is higher
    text = sentence(c, "box")
    assert "undecided: too few rounds — 1 undisturbed paired round (3 needed" in text
    assert "clear" not in text and "tie" not in text
    two = choose([_row("fp32", "fp32", [1.0, 1.0], (0.0, 0.0, 0.0), 3.4),
                  _row("int8", "int8", [1.5, 1.6], (-0.1, -0.4, 0.2), 1.0)], "1")
    assert two.outcome == "undecided" and two.few_rounds == 2
    three = choose([_row("fp32", "fp32", [1.0] * 3, (0.0, 0.0, 0.0), 3.4),
                    _row("int8", "int8", [1.5, 1.6, 1.55], (-0.1, -0.4, 0.2), 1.0)], "1")
    assert three.outcome == "win" and three.few_rounds is None


def test_tie_broken_by_accuracy_then_size_names_only_the_size_peers():
    worse = _row("fp16", "fp16", [1.0, 1.01, 0.99, 1.0, 1.0], (-0.07, -0.14, -0.01), 1.7)  # CI wholly below 0
    twin = _row("fp32 torch", "fp32", [0.99, 1.0, 1.01, 1.0, 1.0], (0.0, 0.0, 0.0), 3.5, kind="torch")
    c = choose([FP32, worse, twin], "1")
    assert c.row is FP32 and c.broken_by == "accuracy, then size" and c.size_peers == [twin]
    text = sentence(c, "box")
    assert "then by size (3.40 MB vs 3.50 MB)" in text and "1.70" not in text


def test_rounds_that_were_all_disturbed_count_as_none():
    fp32 = _row("fp32", "fp32", [1.0] * 5, (0.0, 0.0, 0.0), 3.4)
    int8 = _row("int8", "int8", [1.5, 1.6, 1.55, 1.58, 1.52], (-0.1, -0.4, 0.2), 1.0)
    for r in (fp32, int8):
        r["speed_vs_fp32_onnx"]["1"]["all_rounds_disturbed"] = True
    c = choose([fp32, int8], "1")
    assert c.outcome == "undecided" and c.few_rounds == 0


# -- wording a careful reader does not trip on -------------------------------------------------------

def test_a_tie_never_names_the_fastest_candidate_but_the_undecided_pair_and_what_decides_it():
    """(a) The README main run said 'ship fp32 — the fastest candidate' although nothing was decided."""
    fp16 = _row("fp16", "fp16", [0.97, 1.01, 0.99, 1.02, 0.98], (0.0, 0.0, 0.0), 1.7)
    torch = _row("fp32 torch", "fp32", [0.36, 0.37, 0.38, 0.36, 0.37], (0.0, 0.0, 0.0), 3.5, kind="torch")
    c = choose([FP32, fp16, torch], "1")
    c.bench = {"stopped": "budget", "rounds": 9, "rounds_disturbed": 4, "time_budget_s": 420.0}
    text = sentence(c, "box")
    assert c.outcome == "tie" and "fastest candidate" not in text
    assert "fp32 on ort-cpu at 1.00× (IQR 1.00–1.00) and fp16 on ort-cpu at 0.99× (IQR 0.98–1.01)" in text
    assert "fp32 torch" not in text.split("—")[1].split(";")[0]  # 0.37×: clearly slower, not part of the tie
    assert "more undisturbed rounds would decide it — a quieter box (fewer threads than cores) or a larger " \
           "--time-budget (the bench stopped because its 420 s time budget ran out, after 9 rounds, 4 disturbed)" in text


def test_no_faster_list_from_a_single_round():
    """(b) 'faster but outside the accuracy gate: …' was once built from one undisturbed round."""
    fp32 = _row("fp32", "fp32", [1.0], (0.0, 0.0, 0.0), 3.4)
    bad = _row("int8 entropy", "int8", [1.12], (-9.0, -17.3, -0.6), 1.0)
    text = sentence(choose([fp32, bad], "1"), "box")
    assert "faster" not in text and "the only candidate within the accuracy gate" in text
    assert "outside the accuracy gate, speed not separated from the choice's: int8 entropy on ort-cpu" in text
    five = sentence(choose([FP32, _row("int8 entropy", "int8", [1.12] * 5, (-9.0, -17.3, -0.6), 1.0)], "1"), "box")
    assert "faster but outside the accuracy gate: int8 entropy on ort-cpu (1.12×" in five


def test_no_tie_across_a_large_gap_when_rounds_are_few():
    """(c) fp32 ONNX and the torch checkpoint 0.37× apart over one round: undecided, not a tie."""
    fp32 = _row("fp32", "fp32", [1.0], (0.0, 0.0, 0.0), 3.42)
    torch = _row("fp32 torch checkpoint", "fp32", [0.37], (0.0, 0.0, 0.0), 3.44, kind="torch", backend="torch-cpu")
    c = choose([fp32, torch], "1")
    text = sentence(c, "box")
    assert c.outcome == "undecided" and "tie" not in text
    assert "undecided: too few rounds" in text and "fp32 torch checkpoint on torch-cpu at 0.37×" in text


def test_accuracy_ranks_by_the_lower_end_of_the_interval():
    """(d) An 'as accurate' [−0.99, +0.50] allows a loss of almost 1 pp; a tight [−0.14, −0.01] at most
    0.14 pp, so it ranks above, although its interval lies below zero."""
    wide = accuracy_of(_row("wide", "int8", [1.0], (-0.2, -0.99, 0.5), 1.0), max_drop_pp=1.0)
    tight = accuracy_of(_row("tight", "fp16", [1.0], (-0.07, -0.14, -0.01), 1.7), max_drop_pp=1.0)
    assert wide.words.startswith("as accurate") and tight.words.startswith("less accurate")
    assert tight.rank > wide.rank
    a = _row("int8 wide", "int8", [1.0, 1.01, 0.99, 1.0, 1.0], (-0.2, -0.99, 0.5), 1.0)
    b = _row("fp16 tight", "fp16", [1.0, 0.99, 1.01, 1.0, 1.0], (-0.07, -0.14, -0.01), 1.7)
    c = choose([a, b], "1", max_drop_pp=1.0)
    assert c.row is b and c.broken_by == "accuracy"
    assert "picked by accuracy (the higher lower end of the ΔPCK@20 interval)" in sentence(c, "box")
    # two "more accurate" intervals: the one that rules out more loss ranks first
    wide_up = _row("fp16", "fp16", [1.0, 1.01, 0.99, 1.0, 1.0], (0.8, 0.2, 1.4), 1.0)
    tight_up = _row("int8", "int8", [1.0, 0.99, 1.01, 1.0, 1.0], (0.7, 0.5, 0.9), 1.7)
    assert choose([wide_up, tight_up], "1").row is tight_up


def test_fp32_that_wins_is_said_to_be_clearly_faster_not_the_fastest_candidate():
    fp16 = _row("fp16", "fp16", [0.90, 0.91, 0.92, 0.90, 0.91], (0.0, -0.1, 0.1), 1.7)
    c = choose([FP32, fp16], "1")
    text = sentence(c, "box")
    assert c.outcome == "win" and c.row is FP32
    assert "clearly faster than every other candidate within the accuracy gate, clear of the next fastest " \
           "(fp16 on ort-cpu, IQR up to 0.91×)" in text and "fastest candidate" not in text
