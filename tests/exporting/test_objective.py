"""``export --precision int8 --objective latency`` end to end, on a runtime whose speed we decide.

The runtime adapter here is synthetic: it reads the QDQ graph it is given and spins for a time
set by which convolutions run int8 (their input comes from a DequantizeLinear) — every conv is
faster in int8 except one made slow. Everything else (groups, QDQ writing, the guard, the
search, verification, the card) is the real code on a real small checkpoint.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import onnx
import pytest

from edgepose.timing import adapters
from edgepose.errors import EdgeposeError
from edgepose.exporting import ExportRequest, export

from tests.quantization.teacher import DESTRUCTIVE, TOUCHING, corrupt_ranges, make_teacher

SLOW = "convs.1.body.4"  # made 20× slower in int8 than in float


def int8_convs(model: bytes) -> tuple[set[str], set[str]]:
    """(node names of int8 convs, of float convs) of a serialized graph.

    A conv runs int8 when both its input and its weights come out of a DequantizeLinear. The
    quantizer keeps node names (not the module scopes), so convs are known by node name.
    """
    proto = onnx.load_from_string(model)
    dq = {n.output[0] for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    q, f = set(), set()
    for n in proto.graph.node:
        if n.op_type == "Conv":
            (q if n.input[0] in dq and n.input[1] in dq else f).add(n.name)
    return q, f


#: the ``parallel`` mode of every SpinRuntime load, in order (tests clear it first)
LOADED_MODES: list[str] = []


@dataclass(frozen=True)
class SpinRuntime(adapters.RuntimeAdapter):
    """Spins per conv: ``float_us`` in float, ``int8_us`` in int8, ``slow_us`` for SLOW in int8."""

    name: str = "spin"
    slow_node: str = ""
    float_us: float = 100.0
    int8_us: float = 10.0  # a flip must win clearly even on a busy machine (the search needs > 1 %)
    slow_us: float = 2000.0

    def available(self):
        return True, ""

    def version(self):
        return f"test-{self.float_us}-{self.int8_us}-{self.slow_us}"

    def load(self, model, threads, parallel="intra"):
        LOADED_MODES.append(parallel)
        q, f = int8_convs(model if isinstance(model, bytes) else open(model, "rb").read())
        us = self.float_us * len(f) + sum(self.slow_us if c == self.slow_node else self.int8_us for c in q)

        def prepare(x):
            def call():
                end = time.perf_counter() + us * 1e-6 * (1 + len(x) / 64)
                while time.perf_counter() < end:
                    pass
            return call

        return prepare


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return make_teacher(tmp_path_factory.mktemp("teacher"))


@pytest.fixture(scope="module")
def slow_node(teacher, tmp_path_factory):
    """The ONNX node name of the SLOW conv in the teacher's exported graph."""
    from edgepose.exporting.fold import fold_batchnorm
    from edgepose.exporting.onnx_fp32 import export_onnx
    from edgepose.quantization.recipes import conv_nodes_by_module
    from edgepose.training.checkpoint import load_checkpoint

    model, _ = load_checkpoint(teacher[0])
    path = tmp_path_factory.mktemp("fp32") / "teacher.onnx"
    export_onnx(fold_batchnorm(model), path, (model.cfg.in_channels, model.cfg.window))
    return conv_nodes_by_module(onnx.load(str(path)))[SLOW]


def _plan(ckpt, data, out, monkeypatch, runtime: SpinRuntime, **kw):
    monkeypatch.setitem(adapters.ADAPTERS, runtime.name, runtime)
    kw.setdefault("search", "full")  # single groups: these tests check group-level choices
    kw.setdefault("search_minutes", 60.0)  # the default deadline could end the search early on a loaded machine
    req = ExportRequest(checkpoint=ckpt, out=out, data=data, precision="int8", objective="latency",
                        runtime=runtime.name, batches=(1,), timing_seconds=0.03, calib_count=24, parity_windows=8,
                        profile_cache=False, log=lambda s: None, **kw)
    (path,) = export(req)
    return path, json.loads(path.with_name(path.name + ".json").read_text())


def _conv_groups(card) -> dict[str, str]:
    return {layer["name"]: layer["precision"] for layer in card["plan"]["layers"] if "conv" in layer["kind"]}


def test_the_slow_layer_stays_float_and_every_paying_conv_runs_int8(tmp_path, teacher, slow_node, monkeypatch):
    ckpt, data = teacher
    path, card = _plan(ckpt, data, tmp_path, monkeypatch, SpinRuntime(slow_node=slow_node), max_drop=100.0)
    plan = card["plan"]
    assert card["precision"] == "int8" and plan["int8"]
    convs = _conv_groups(card)
    assert convs[SLOW] == "float"
    assert all(p == "int8" for name, p in convs.items() if name != SLOW)
    q, f = int8_convs(path.read_bytes())  # the shipped graph is the plan
    assert f == {slow_node} and len(q) == len(convs) - 1
    slow = next(layer for layer in plan["layers"] if layer["name"] == SLOW)
    assert slow["int8_gain_us"]["1"] < 0 and "speed" in slow["why"]
    e2e = plan["end_to_end"]["1"]
    assert e2e["speedup"] > 1.5  # 100 → 30 µs per conv except one, measured end to end
    assert plan["runtime"]["name"] == "spin" and "cpu_flags" in plan["machine"]
    assert plan["search"]["evaluations"] > 0 and plan["search"]["steps"][0]["stage"] == "start"


@pytest.mark.parametrize("parallel", ["batch", "intra"])
def test_the_plan_times_every_graph_in_the_requested_parallel_mode_and_records_it(tmp_path, teacher, slow_node,
                                                                                  monkeypatch, parallel):
    ckpt, data = teacher
    LOADED_MODES.clear()
    kw = {} if parallel == "batch" else {"parallel": parallel}  # batch is the default
    _, card = _plan(ckpt, data, tmp_path, monkeypatch, SpinRuntime(slow_node=slow_node), max_drop=100.0,
                    search="blocks", **kw)
    assert LOADED_MODES and set(LOADED_MODES) == {parallel}
    assert card["plan"]["parallel"] == parallel


def test_the_default_block_search_keeps_the_slow_block_float_and_the_rest_int8(tmp_path, teacher, slow_node,
                                                                              monkeypatch):
    from edgepose.quantization.planning.search import block_units

    ckpt, data = teacher
    path, card = _plan(ckpt, data, tmp_path, monkeypatch, SpinRuntime(slow_node=slow_node), max_drop=100.0,
                       search="blocks")
    plan = card["plan"]
    assert plan["search"]["stages"] == ["blocks"] and card["plan"]["int8"]
    convs = _conv_groups(card)
    block = next(u for u in block_units(list(convs)) if SLOW in u.groups)
    assert convs[SLOW] == "float"
    # outside the slow conv's block every conv is int8 (a block flips as a whole: its other convs may follow it)
    assert all(p == "int8" for name, p in convs.items() if name not in block.groups)
    assert plan["end_to_end"]["1"]["speedup"] > 1.5


def test_when_no_layer_pays_the_artifact_is_the_fp32_graph_and_the_card_says_so(tmp_path, teacher, monkeypatch):
    ckpt, data = teacher
    logs: list[str] = []
    monkeypatch.setitem(adapters.ADAPTERS, "spin", SpinRuntime(int8_us=160.0, slow_us=160.0))  # every int8 conv slower
    req = ExportRequest(checkpoint=ckpt, out=tmp_path, data=data, precision="int8", objective="latency", runtime="spin",
                        batches=(1, 8), timing_seconds=0.03, calib_count=24, parity_windows=8, profile_cache=False,
                        max_drop=100.0, log=logs.append)
    (path,) = export(req)
    card = json.loads(path.with_name(path.name + ".json").read_text())
    assert card["precision"] == "fp32" and not card["plan"]["int8"] and card["plan"]["int8_groups"] == []
    assert ".fp32-plan-latency-" in path.name
    assert int8_convs(path.read_bytes())[0] == set()
    assert any("no int8 plan was faster than fp32 at every batch here" in line for line in logs)
    assert any("all-float" in n for n in card["plan"]["notes"])


def test_the_default_int8_is_the_block_latency_plan_named_auto(tmp_path, teacher, slow_node, monkeypatch):
    """``--precision int8`` with no other option makes the latency plan (whole blocks) on this machine."""
    from edgepose.benchmarking.artifacts import discover

    ckpt, data = teacher
    monkeypatch.setitem(adapters.ADAPTERS, "spin", SpinRuntime(slow_node=slow_node))
    req = ExportRequest(checkpoint=ckpt, out=tmp_path, data=data, precision="int8", runtime="spin", batches=(1, 8),
                        timing_seconds=0.03, calib_count=24, parity_windows=8, profile_cache=False, max_drop=None,
                        log=lambda s: None)
    assert req.recipe == "auto" and req.objective is None
    (path,) = export(req)
    card = json.loads(path.with_name(path.name + ".json").read_text())
    assert card["precision"] == "int8" and ".int8-ptq-percentile-auto-ort-cpu.onnx" in path.name
    assert card["recipe"]["recipe"] == "auto" and card["recipe"]["chosen"] == "plan-latency"
    plan = card["plan"]
    assert plan["objective"] == "latency" and plan["search"]["stages"] == ["blocks"] and plan["batches"] == [1, 8]
    assert plan["max_drop_pp"] == 0.5  # the one accuracy gate, judged by the lower end of its interval
    assert plan["criterion"] == "lower" and plan["guard"]["met"]
    v = plan["validation"]
    assert v["low_pp"] <= v["delta_pck20_pp"] <= v["high_pp"] and v["low_pp"] >= -0.5
    assert all(plan["end_to_end"][b]["speedup"] > 1.0 for b in ("1", "8"))
    assert _conv_groups(card)[SLOW] == "float"  # for speed, or because the guard kept it float
    if SLOW in plan["allowed_by_guard"]:  # allowed int8, it is float for speed: its block's "why" says so
        slow = next(layer for layer in plan["layers"] if layer["name"] == SLOW)
        assert "speed" in slow["why"], slow["why"]
    assert card["recipe"]["int8_groups"] == len(plan["int8_groups"]) > 0
    q, _ = int8_convs(path.read_bytes())
    assert q  # the shipped graph is the plan's
    (art,) = [a for a in discover(tmp_path) if a.path == path]
    assert art.label == "int8 ptq percentile auto:plan-latency"


def test_the_default_int8_ships_the_fp32_graph_named_auto_when_nothing_pays(tmp_path, teacher, monkeypatch):
    ckpt, data = teacher
    monkeypatch.setitem(adapters.ADAPTERS, "spin", SpinRuntime(int8_us=160.0, slow_us=160.0))
    (path,) = export(ExportRequest(checkpoint=ckpt, out=tmp_path, data=data, precision="int8", runtime="spin",
                                   batches=(1,), timing_seconds=0.03, calib_count=24, parity_windows=8,
                                   profile_cache=False, log=lambda s: None))
    card = json.loads(path.with_name(path.name + ".json").read_text())
    assert card["precision"] == "fp32" and ".fp32-auto-ort-cpu.onnx" in path.name
    assert card["recipe"]["recipe"] == "auto" and card["recipe"]["chosen"] == "fp32"
    assert int8_convs(path.read_bytes())[0] == set() and not card["plan"]["int8"]
    assert card["plan"]["guard"]["met"]  # fp32 for speed, not for accuracy
    assert any("no int8 plan was faster than fp32" in n for n in card["plan"]["notes"])


def test_the_default_int8_judges_the_lower_end_of_the_interval_where_an_objective_plan_judges_the_point(
        tmp_path, teacher, slow_node, monkeypatch):
    """Every graph's validation interval reaching −1 pp: the point estimate passes, the lower end does not."""
    from edgepose.quantization.probe import QuantProbe

    ckpt, data = teacher
    monkeypatch.setitem(adapters.ADAPTERS, "spin", SpinRuntime(slow_node=slow_node))
    monkeypatch.setattr(QuantProbe, "delta_interval",
                        lambda self, path, level=0.95: (self.delta(self.score(path))[0], -1.0, 1.0))
    kw = dict(data=data, precision="int8", runtime="spin", batches=(1,), timing_seconds=0.03, calib_count=24,
              parity_windows=8, profile_cache=False, log=lambda s: None)
    (auto,) = export(ExportRequest(ckpt, tmp_path / "auto", **kw))
    (point,) = export(ExportRequest(ckpt, tmp_path / "point", objective="latency", **kw))
    ca, cp = (json.loads(p.with_name(p.name + ".json").read_text()) for p in (auto, point))
    assert ca["precision"] == "fp32" and ca["plan"]["criterion"] == "lower" and not ca["plan"]["guard"]["met"]
    assert cp["precision"] == "int8" and cp["plan"]["criterion"] == "point" and cp["plan"]["guard"]["met"]
    # the default int8 bisects its restore order (to save time for the search); --objective keeps --guard-strategy
    assert ca["plan"]["guard"]["strategy"] == "bisect" and cp["plan"]["guard"]["strategy"] == "linear"
    # bisection judged the all-int8 graph and the longest prefix, both short of the budget, and stopped
    assert ca["plan"]["guard"]["graphs_judged"] == 2


def test_plan_options_reach_the_default_int8_from_the_command_line(tmp_path, teacher, monkeypatch):
    from click.testing import CliRunner

    import edgepose.api as api
    from edgepose.cli.main import cli

    ckpt, data = teacher
    seen: list[dict] = []
    monkeypatch.setattr(api, "export", lambda *a, **kw: seen.append(kw) or [])
    args = ["export", str(ckpt), "--precision", "int8", "--data", str(data), "--out", str(tmp_path / "o")]
    r = CliRunner().invoke(cli, args + ["--search", "full", "--search-minutes", "3", "--no-profile-cache", "--batch", "1,8"])
    assert r.exit_code == 0, r.output
    assert seen[-1]["search"] == "full" and seen[-1]["search_minutes"] == 3 and seen[-1]["profile_cache"] is False
    assert seen[-1]["batches"] == (1, 8) and seen[-1]["recipe"] == "auto"
    for extra in (["--target", "tensorrt"], ["--max-drop", "0.5"], ["--pad-channels"]):  # no plan is made there
        r = CliRunner().invoke(cli, args + extra + ["--search", "full"])
        assert r.exit_code == 2 and "--search applies to latency plans only" in r.output, extra


def test_the_plan_respects_max_drop_even_where_int8_is_fastest(tmp_path, teacher, slow_node, monkeypatch):
    from edgepose.data import SplitSpec, open_dataset
    from edgepose.exporting.fold import fold_batchnorm
    from edgepose.exporting.onnx_fp32 import export_onnx
    from edgepose.metrics import pck
    from edgepose.runtime.session import ort_predict, ort_session
    from edgepose.training.checkpoint import load_checkpoint

    ckpt, data = teacher
    corrupt_ranges(monkeypatch)  # quantizing DESTRUCTIVE's input wrecks accuracy
    # every conv is faster int8 here (slow_us < float_us), so whole blocks suffice: the guard decides what is float
    path, card = _plan(ckpt, data, tmp_path, monkeypatch, SpinRuntime(slow_node=slow_node, slow_us=30.0), max_drop=0.5,
                       search="blocks")
    plan = card["plan"]
    assert plan["validation"]["delta_pck20_pp"] >= -0.5
    convs = _conv_groups(card)
    assert all(convs[g] == "float" for g in TOUCHING)
    assert "accuracy" in next(layer["why"] for layer in plan["layers"] if layer["name"] == DESTRUCTIVE)
    assert sum(p == "int8" for p in convs.values()) >= len(convs) - len(TOUCHING)
    # re-score the shipped artifact on validation ourselves
    ds = open_dataset(data)
    x, y = ds.read(ds.indices("val", clean=True, spec=SplitSpec()))

    model, _ = load_checkpoint(ckpt)
    ref = tmp_path / "ref.onnx"
    export_onnx(fold_batchnorm(model), ref, (x.shape[1], x.shape[2]))
    torso = ds.layout.torso
    base = pck(ort_predict(ort_session(ref), x), y, (0.2,), torso)[0.2]
    got = pck(ort_predict(ort_session(path), x), y, (0.2,), torso)[0.2]
    assert 100 * (got - base) >= -0.5


def test_plan_options_are_checked_before_any_work(tmp_path, teacher):
    ckpt, data = teacher
    with pytest.raises(EdgeposeError, match="objective"):
        export(ExportRequest(ckpt, tmp_path, precision="int8", objective="speed", data=data))
    with pytest.raises(EdgeposeError, match="--objective plans int8"):
        export(ExportRequest(ckpt, tmp_path, precision="fp16", objective="latency", data=data))
    with pytest.raises(EdgeposeError, match="unknown runtime"):
        export(ExportRequest(ckpt, tmp_path, precision="int8", objective="latency", runtime="tvm", data=data))
    with pytest.raises(EdgeposeError, match="positive batch"):
        export(ExportRequest(ckpt, tmp_path, precision="int8", objective="latency", batches=(0,), data=data))
    with pytest.raises(EdgeposeError, match="use --target ort-cpu"):
        export(ExportRequest(ckpt, tmp_path, precision="int8", objective="latency", target="tensorrt", data=data))
    assert list(tmp_path.iterdir()) == []


def test_plan_options_without_objective_are_a_usage_error(tmp_path, teacher):
    from click.testing import CliRunner

    from edgepose.cli.main import cli

    ckpt, data = teacher
    r = CliRunner().invoke(cli, ["export", str(ckpt), "--precision", "int8", "--recipe", "safe", "--batch", "1,8",
                                 "--threads", "1", "--data", str(data), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--batch, --threads apply to latency plans only" in r.output
    assert "the default int8 recipe, auto" in r.output and "also to --recipe checked" in r.output
    r = CliRunner().invoke(cli, ["export", str(ckpt), "--precision", "int8", "--recipe", "safe", "--parallel", "intra",
                                 "--data", str(data), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--parallel applies to latency plans only" in r.output
    for recipe in ("safe", "checked"):  # checked is timed, but searches nothing
        r = CliRunner().invoke(cli, ["export", str(ckpt), "--precision", "int8", "--recipe", recipe, "--search", "full",
                                     "--data", str(data), "--out", str(tmp_path / "o")])
        assert r.exit_code == 2 and "--search applies to latency plans only" in r.output
    assert not (tmp_path / "o").exists()


def test_profile_cache_replays_the_search_without_timing(tmp_path, teacher, slow_node, monkeypatch):
    ckpt, data = teacher
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(adapters.ADAPTERS, "spin", SpinRuntime(slow_node=slow_node))
    kw = dict(data=data, precision="int8", objective="latency", runtime="spin", batches=(1,), timing_seconds=0.03,
              calib_count=24, parity_windows=8, max_drop=100.0, log=lambda s: None)
    (a,) = export(ExportRequest(ckpt, tmp_path / "a", **kw))
    (b,) = export(ExportRequest(ckpt, tmp_path / "b", **kw))
    ca, cb = (json.loads(p.with_name(p.name + ".json").read_text())["plan"] for p in (a, b))
    assert ca["profile"]["timed"] > 0 and ca["profile"]["cache_hits"] == 0
    # the replayed search times nothing; only the card's end-to-end figures are timed afresh (batch 1)
    assert cb["profile"]["timed"] == 1 and cb["profile"]["cache_hits"] > 0
    assert ca["int8_groups"] == cb["int8_groups"]
    assert ca["profile"]["cache"] == cb["profile"]["cache"]
    # re-timed, so close but not identical (the spin runtime makes the plan 3× faster either way)
    assert abs(ca["end_to_end"]["1"]["speedup"] / cb["end_to_end"]["1"]["speedup"] - 1) < 0.2


def test_analyze_speed_column_and_the_report_show_gains_sensitivity_and_the_plan(tmp_path, teacher, slow_node,
                                                                                  monkeypatch):
    from edgepose.analysis import analyze, load_result
    from edgepose.benchmarking import TimingPlan, bench, write_results
    from edgepose.reporting import build_report

    ckpt, data = teacher
    monkeypatch.setitem(adapters.ADAPTERS, "spin", SpinRuntime(slow_node=slow_node))
    res = analyze(ckpt, data=data, calib_count=24, threads=1, speed=True, batches=(1,), runtime="spin",
                  timing_seconds=0.03, log=lambda s: None)
    gains = {g.name: g.int8_gain_us["1"] for g in res.groups}
    others = [v for name, v in gains.items() if name != SLOW and name in _conv_names(res)]
    # the slow conv loses by far the most; the paying convs gain (30 ms timings: on a loaded box a single one
    # may read at or below zero, so the check is on nearly all of them, not on the minimum)
    assert gains[SLOW] < 0 and gains[SLOW] < min(others) and sum(v > 0 for v in others) >= 0.9 * len(others)
    assert res.speed["context"] == "all-int8" and res.speed["runtime"]["name"] == "spin"
    folder = tmp_path / "arts"
    export(ExportRequest(ckpt, folder, data=data, precision="fp32", parity_windows=8, log=lambda s: None))
    _plan(ckpt, data, folder, monkeypatch, SpinRuntime(slow_node=slow_node), max_drop=100.0, search="blocks")
    doc = bench(folder, "cpu", (1,), 1, TimingPlan(warmup=1, iters=3, min_seconds=0.0), data, log=lambda s: None,
                isolate=False, rounds=2)
    results, _ = write_results(doc, tmp_path / "bench" / "cpu.json")
    paths = res.write(tmp_path / "bench")  # beside the results: the report finds it
    assert "By int8 speed gain" in paths["markdown"].read_text()
    reloaded = {g.name: g.int8_gain_us for g in load_result(paths["json"]).groups}
    assert reloaded == {g.name: g.int8_gain_us for g in res.groups} and reloaded[SLOW]["1"] < 0
    md, page = build_report([results], tmp_path / "report")
    text = md.read_text()
    assert "## Per-layer int8 plan vs the other recipes" in text and "plan-b1.png" in text
    assert "## int8 sensitivity (validation)" in text and "sensitivity-0.png" in text and "int8 gain µs" in text
    for name in ("plan-b1.png", "sensitivity-0.png"):
        assert (md.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _conv_names(res) -> set[str]:
    return {g.name for g in res.groups if g.kind.startswith(("conv", "head conv"))}


def test_onnxruntime_and_openvino_adapters_time_the_same_graph(tmp_path, teacher, monkeypatch):
    """OpenVINO is in the ``dev`` extra, so this runs wherever the tests do: both adapters load the
    same serialized graph, compute what the checkpoint computes, and give positive paired timings."""
    import sys

    import torch

    from edgepose.exporting.fold import fold_batchnorm
    from edgepose.exporting.onnx_fp32 import export_onnx
    from edgepose.quantization.planning.timer import paired_medians
    from edgepose.training.checkpoint import load_checkpoint

    model, _ = load_checkpoint(teacher[0])
    path = tmp_path / "m.onnx"
    export_onnx(fold_batchnorm(model), path, (model.cfg.in_channels, model.cfg.window))
    x = np.random.default_rng(0).standard_normal((3, model.cfg.in_channels, model.cfg.window)).astype(np.float32)
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(x)).numpy()
    ok, why = adapters.ADAPTERS["openvino"].available()
    assert ok, f"openvino is part of the dev extra (pip install -e '.[dev]'): {why}"
    import openvino

    calls = {}
    for name in ("onnxruntime", "openvino"):
        adapter = adapters.get_adapter(name)
        assert adapter.describe() == {"name": name, "version": adapter.version()}
        call = adapter.load(path.read_bytes(), 1)(x)
        out = np.asarray(call())  # the first output
        assert out.shape == (3, 15, 2) and out.dtype == np.float32, name
        # the checkpoint's own output: each runtime ran this graph, not some other one
        np.testing.assert_allclose(out, ref, atol=1e-4, err_msg=name)
        calls[name] = (call, out)
    assert adapters.get_adapter("openvino").version() == openvino.__version__
    np.testing.assert_allclose(calls["openvino"][1], calls["onnxruntime"][1], atol=1e-4)
    # a path loads like bytes, and the binding is to this input: another input gives another pose
    again = np.asarray(adapters.get_adapter("openvino").load(path, 1)(x[::-1].copy())())
    np.testing.assert_allclose(again, ref[::-1], atol=1e-4)
    ort_ms, ov_ms = paired_medians(calls["onnxruntime"][0], calls["openvino"][0], seconds=0.2)
    assert 0 < ort_ms < 1e4 and 0 < ov_ms < 1e4
    # where OpenVINO does not import, the adapter says so by name instead of failing later
    monkeypatch.setitem(sys.modules, "openvino", None)
    assert adapters.ADAPTERS["openvino"].available() == (False, "OpenVINO is not installed (pip install openvino)")
    with pytest.raises(EdgeposeError, match="runtime openvino cannot be used here: OpenVINO is not installed"):
        adapters.get_adapter("openvino")


def test_size_objective_keeps_every_group_the_guard_allows_without_timing_a_search(tmp_path, teacher, monkeypatch):
    ckpt, data = teacher
    corrupt_ranges(monkeypatch)
    monkeypatch.setitem(adapters.ADAPTERS, "spin", SpinRuntime())
    (path,) = export(ExportRequest(ckpt, tmp_path, data=data, precision="int8", objective="size", runtime="spin",
                                   batches=(1,), timing_seconds=0.03, calib_count=24, parity_windows=8,
                                   profile_cache=False, max_drop=0.5, log=lambda s: None))
    plan = json.loads(path.with_name(path.name + ".json").read_text())["plan"]
    assert plan["search"] == {} and plan["objective"] == "size"
    assert sorted(plan["int8_groups"]) == sorted(plan["allowed_by_guard"]) and plan["int8_groups"]
    assert not set(plan["int8_groups"]) & TOUCHING
    assert plan["validation"]["delta_pck20_pp"] >= -0.5
    assert set(plan["end_to_end"]) == {"1"}  # still timed once for the card


def test_a_replayed_plan_that_re_times_slower_than_fp32_is_the_fp32_graph(tmp_path, teacher, slow_node, monkeypatch):
    """The cache replays a plan measured on a machine state that no longer holds (here: int8 became slower
    under the same runtime version); the fresh end-to-end timing catches it and the artifact is fp32."""
    from dataclasses import dataclass as dc

    @dc(frozen=True)
    class SameVersion(SpinRuntime):
        def version(self):
            return "test-same"

    ckpt, data = teacher
    monkeypatch.setenv("EDGEPOSE_CACHE", str(tmp_path / "cache"))
    kw = dict(data=data, precision="int8", objective="latency", runtime="spin", batches=(1,), timing_seconds=0.03,
              calib_count=24, parity_windows=8, max_drop=100.0, log=lambda s: None)
    monkeypatch.setitem(adapters.ADAPTERS, "spin", SameVersion(slow_node=slow_node))
    (fast,) = export(ExportRequest(ckpt, tmp_path / "a", **kw))
    monkeypatch.setitem(adapters.ADAPTERS, "spin", SameVersion(int8_us=400.0, slow_us=400.0))
    (slow,) = export(ExportRequest(ckpt, tmp_path / "b", **kw))
    ca, cb = (json.loads(p.with_name(p.name + ".json").read_text())["plan"] for p in (fast, slow))
    assert ca["int8"] and cb["profile"]["cache_hits"] > 0  # the second search was replayed, not re-timed
    assert not cb["int8"] and cb["int8_groups"] == [] and ".fp32-plan-latency-" in slow.name
    assert any("re-timed now" in n and "all-float" in n for n in cb["notes"])
