"""int8 verified without a search (``--recipe checked``, and ``auto`` where no plan can be made): checked
on validation and timed against fp32 on this box. (``auto`` as a latency plan: tests/exporting/test_objective.py.)

The speed comparison is replaced by a synthetic one where the test decides who is faster
(``time_against_fp32``); everything else — groups, QDQ writing, validation scores, the card — is
the real code on the teacher checkpoint. One test times two real graphs with the real function.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import edgepose.exporting.verified as verified
from edgepose.exporting import ExportRequest, export
from edgepose.quantization.recipes import attention_modules, get_recipe

from tests.quantization.teacher import TOUCHING, corrupt_ranges, make_teacher


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return make_teacher(tmp_path_factory.mktemp("teacher"))


def _card(path):
    return json.loads(path.with_name(path.name + ".json").read_text())


#: the ``parallel`` mode of every faked timing, in order (each test's _fake_speed clears it)
MODES: list[str] = []


def _fake_speed(monkeypatch, speedups: list[float]):
    """Each call of ``time_against_fp32`` returns the next speedup at every batch; the calls are recorded."""
    calls: list[str] = []
    MODES.clear()

    def fake(path, fp32, windows, batches, threads, seconds=verified.VERIFY_SECONDS, parallel="intra"):
        s = speedups[len(calls)]
        calls.append(path.name)
        MODES.append(parallel)
        return {str(b): {"int8_ms": 1.0 / s, "fp32_ms": 1.0, "speedup": s} for b in batches}

    monkeypatch.setattr(verified, "time_against_fp32", fake)
    return calls


def _export(ckpt, data, out, **kw):
    kw.setdefault("recipe", "checked")
    (path,) = export(ExportRequest(checkpoint=ckpt, out=out, data=data, precision="int8", calib_count=24,
                                   parity_windows=8, batches=(1, 5), log=lambda s: None, **kw))
    return path, _card(path)


def _int8_ops(path) -> tuple[set[str], set[str]]:
    """(names of nodes that read a dequantized input, of nodes that read only float) for Conv and MatMul."""
    proto = onnx.load(str(path))
    dq = {n.output[0] for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    q, f = set(), set()
    for n in proto.graph.node:
        if n.op_type in ("Conv", "MatMul"):
            (q if n.input[0] in dq else f).add(f"{n.op_type}:{n.name}")
    return q, f


def test_checked_ships_attention_float_as_guarded_when_it_pays(tmp_path, teacher, monkeypatch):
    ckpt, data = teacher
    calls = _fake_speed(monkeypatch, [1.3])
    path, card = _export(ckpt, data, tmp_path)
    assert card["precision"] == "int8" and card["recipe"]["recipe"] == "checked"
    assert ".int8-ptq-percentile-guarded-" in path.name
    # guarded starts from attention-float; within the gate as it is, nothing is restored and no scan runs
    assert card["recipe"]["chosen"] == "guarded" and len(calls) == 1
    assert card["recipe"]["guard_restored"] == [] and card["verified"]["attempts"][0]["guard"]["graphs_scored"] == 1
    q, f = _int8_ops(path)
    # the attention's matmuls stay float, every conv outside it is int8
    assert {n for n in f if n.startswith("MatMul")} and not {n for n in q if n.startswith("MatMul")}
    assert {n for n in q if n.startswith("Conv")}
    floats = set(card["recipe"]["float_groups"])
    assert floats and all(g.split(".")[0] in ("attn_w", "attn_h") for g in floats)  # WiFlow's two attentions
    v = card["verified"]
    assert v["candidates"] == ["guarded", "safe"] and v["attempts"][0]["shipped"]
    assert v["attempts"][0]["speed"]["5"]["speedup"] == pytest.approx(1.3)
    assert "cpu_flags" in v["machine"] and v["batches"] == [1, 5]
    assert MODES == ["batch"] and v["parallel"] == "batch"  # timed and recorded in the default mode
    assert card["test"]["windows"] > 0 and "scored_on" in card["test"]
    assert card["parity"]["vs_fp32_torch"]["max_abs_error"] < 0.5


def test_checked_falls_back_to_safe_when_the_guarded_graph_is_slower_here(tmp_path, teacher, monkeypatch):
    ckpt, data = teacher
    calls = _fake_speed(monkeypatch, [0.9, 1.1])
    path, card = _export(ckpt, data, tmp_path, parallel="intra")
    assert MODES == ["intra", "intra"] and card["verified"]["parallel"] == "intra"
    a, b = card["verified"]["attempts"]
    assert not a["shipped"] and "slower than fp32 at batch 1, 5" in a["why"]
    assert b["shipped"] and card["recipe"]["chosen"] == "safe" and "guarded" in calls[0]
    assert "attn_w.qkv" in card["recipe"]["float_convs"]  # the safe recipe's own parameters
    assert not list(tmp_path.glob("*guarded*"))  # the rejected candidate was not left behind


def test_checked_puts_the_destructive_groups_back_and_ships_the_rest_int8(tmp_path, teacher, monkeypatch):
    ckpt, data = teacher
    corrupt_ranges(monkeypatch)  # decoder.3's input range: both groups quantizing that tensor are destructive
    calls = _fake_speed(monkeypatch, [1.2])
    path, card = _export(ckpt, data, tmp_path)
    first = card["verified"]["attempts"][0]
    assert first["shipped"] and card["recipe"]["chosen"] == "guarded" and len(calls) == 1
    assert set(first["guard"]["restored"]) == TOUCHING and first["guard"]["met"]
    assert first["guard"]["graphs_scored"] >= 2  # the start graph missed, then restored prefixes were scored
    assert first["validation"]["delta_pck20_pp"] >= -0.5
    floats = set(card["recipe"]["float_groups"])
    assert TOUCHING <= floats and all(g in TOUCHING or g.split(".")[0] in ("attn_w", "attn_h") for g in floats)
    # the shipped graph is the card's: decoder.3's conv reads a float input, the convs of tcn an int8 one
    from tests.quantization.test_guard import _conv_node_names

    node_of = _conv_node_names(ckpt, tmp_path)  # the quantizer keeps node names, not module scopes
    proto = onnx.load(str(path))
    dq = {n.output[0] for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    reads_int8 = {n.name: n.input[0] in dq for n in proto.graph.node if n.op_type == "Conv"}
    assert reads_int8[node_of["decoder.3"]] is False
    assert any(reads_int8[name] for module, name in node_of.items() if module.startswith("tcn"))


def test_checked_ships_the_fp32_graph_when_nothing_pays_and_says_so(tmp_path, teacher, monkeypatch):
    from edgepose.benchmarking.artifacts import discover

    ckpt, data = teacher
    _fake_speed(monkeypatch, [0.8, 0.95])
    path, card = _export(ckpt, data, tmp_path)
    assert card["precision"] == "fp32" and card["recipe"] == {"recipe": "checked", "chosen": "fp32"}
    assert ".fp32-checked-" in path.name and _int8_ops(path)[0] == set()
    assert [x["shipped"] for x in card["verified"]["attempts"]] == [False, False]
    assert card["test"]["delta_pck20_pp"] == 0.0
    (art,) = [a for a in discover(tmp_path) if a.path == path]
    assert art.label == "fp32 checked:fp32"


def test_auto_on_a_split_without_validation_ships_fp32_and_says_why(tmp_path, monkeypatch):
    """Two files split 1 / 0 / 1: nothing to check the gate on. The default export neither fails nor
    ships an unchecked int8 graph; ``--recipe safe`` still exports int8 (the conformance matrix's
    ``one-train-file`` size once failed here with 'no clean validation windows')."""
    from edgepose.conformance import DataSize, Shape, make_checkpoint, write_dataset

    data = write_dataset(tmp_path / "data", Shape("odd", "wiflow", 37, 20, 15), DataSize("two", files=2, windows_per_file=9))
    ckpt = make_checkpoint("wiflow-tiny", data, tmp_path / "ckpt")
    calls = _fake_speed(monkeypatch, [2.0, 2.0])
    path, card = _export(ckpt, data, tmp_path / "auto", recipe="auto")  # the default: no plan without validation
    assert calls == []  # nothing was built or timed
    assert card["precision"] == "fp32" and card["recipe"] == {"recipe": "auto", "chosen": "fp32"}
    assert ".fp32-auto-" in path.name and _int8_ops(path)[0] == set()
    v = card["verified"]
    assert v["validation_windows"] == 0 and v["attempts"] == []
    assert "no clean validation windows" in v["why"] and str(data) in v["why"] and "--recipe safe" in v["why"]
    assert card["test"]["windows"] == 9 and card["test"]["delta_pck20_pp"] == 0.0
    safe, safe_card = _export(ckpt, data, tmp_path / "safe", recipe="safe")
    assert safe_card["precision"] == "int8" and _int8_ops(safe)[0]


def _guard_that_misses(module, monkeypatch, delta: float = -3.0):
    """Replace ``module.guard_groups`` by one whose closest graph (its start) is ``delta`` pp on validation."""
    from edgepose.quantization.guard import GuardResult, GuardStep

    def fake(probe, start, max_drop, log=print, strategy="bisect"):
        note = f"no configuration with an int8 group kept validation ΔPCK@20 ≥ −{max_drop} pp"
        return GuardResult(max_drop, False, 0, [GuardStep(None, [], delta, 0.01)], [], list(start), [note],
                           strategy=strategy), []

    monkeypatch.setattr(module, "guard_groups", fake)


def test_a_candidate_outside_the_gate_is_not_timed(tmp_path, teacher, monkeypatch):
    ckpt, data = teacher
    _guard_that_misses(verified, monkeypatch)
    calls = _fake_speed(monkeypatch, [1.2])
    path, card = _export(ckpt, data, tmp_path)
    first = card["verified"]["attempts"][0]
    assert first["recipe"] == "guarded" and "speed" not in first and "within the gate" in first["why"]
    assert first["validation"]["delta_pck20_pp"] == -3.0 and not first["guard"]["met"] and not first["shipped"]
    assert "restored" not in first["guard"]  # nothing was built from a configuration outside the gate
    assert card["recipe"]["chosen"] == "safe" and len(calls) == 1 and "safe" in calls[0]


def test_a_candidate_that_cannot_be_built_is_skipped_not_fatal(tmp_path, teacher, monkeypatch):
    from edgepose.errors import EdgeposeError

    ckpt, data = teacher

    def unbuildable(*a, **kw):
        raise EdgeposeError("no group of these runs a convolution or matmul in int8 for this target")

    monkeypatch.setattr(verified, "guard_groups", unbuildable)
    calls = _fake_speed(monkeypatch, [1.1])
    path, card = _export(ckpt, data, tmp_path)
    first, second = card["verified"]["attempts"]
    assert not first["shipped"] and "not buildable here" in first["why"] and "convolution or matmul" in first["why"]
    assert second["shipped"] and card["recipe"]["chosen"] == "safe" and len(calls) == 1


def test_qat_and_tensorrt_use_the_fallback_recipe(tmp_path, teacher, monkeypatch):
    ckpt, data = teacher
    calls = _fake_speed(monkeypatch, [])
    path, card = _export(ckpt, data, tmp_path, target="tensorrt")
    assert card["recipe"]["recipe"] == "safe" and calls == []
    path, card = _export(ckpt, data, tmp_path / "auto", target="tensorrt", recipe="auto")  # no plan for TensorRT
    assert card["recipe"]["recipe"] == "safe" and "plan" not in card and calls == []


def test_attention_float_as_an_explicit_recipe_is_ptq_on_ort_cpu_only(tmp_path, teacher):
    from edgepose.errors import EdgeposeError

    ckpt, data = teacher
    path, card = _export(ckpt, data, tmp_path, recipe="attention-float")
    assert card["recipe"]["recipe"] == "attention-float" and "verified" not in card
    with pytest.raises(EdgeposeError, match="ort-cpu only"):
        _export(ckpt, data, tmp_path / "trt", recipe="attention-float", target="tensorrt")


def test_guarded_as_an_explicit_recipe_records_its_guard_and_refuses_what_misses_the_gate(tmp_path, teacher,
                                                                                          monkeypatch):
    from edgepose.errors import EdgeposeError

    ckpt, data = teacher
    corrupt_ranges(monkeypatch)
    path, card = _export(ckpt, data, tmp_path, recipe="guarded")
    assert card["recipe"]["recipe"] == "guarded" and "verified" not in card
    assert set(card["guard"]["float_groups"]) == TOUCHING and card["guard"]["strategy"] == "bisect"
    assert card["guard"]["validation"]["delta_pck20_pp"] >= -0.5
    import edgepose.exporting.int8_exporters as int8_exporters

    _guard_that_misses(int8_exporters, monkeypatch)
    with pytest.raises(EdgeposeError, match="no configuration .* nothing written"):
        _export(ckpt, data, tmp_path / "bad", recipe="guarded")


def test_attention_modules_come_from_the_attention_groups():
    from edgepose.quantization.groups import Group

    groups = [Group("convs.0", "conv+silu"), Group("attn_w.qkv", "conv"), Group("attn_w", "attention"),
              Group("attn_wx", "conv"), Group("tcn.0", "residual+silu")]
    assert attention_modules(groups) == {"attn_w"}
    assert get_recipe("attention-float").int8_groups(groups) == ["convs.0", "attn_wx", "tcn.0"]


def test_time_against_fp32_times_two_real_graphs(tmp_path, teacher):
    ckpt, data = teacher
    (fp32,) = export(ExportRequest(checkpoint=ckpt, out=tmp_path, data=data, precision="fp32", parity_windows=8,
                                   log=lambda s: None))
    x = np.random.default_rng(0).standard_normal((3, 40, 20)).astype(np.float32)
    out = verified.time_against_fp32(fp32, fp32, x, (1, 4), threads=1, seconds=0.05)
    assert set(out) == {"1", "4"}
    for v in out.values():
        assert v["int8_ms"] > 0 and v["fp32_ms"] > 0 and v["speedup"] == pytest.approx(v["fp32_ms"] / v["int8_ms"])
