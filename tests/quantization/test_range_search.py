"""Output-aware range search: lowers the output error it reports, changes only scales and the biases that follow
them (kept consistent for ONNX Runtime's int8 kernels), leaves the kernels alone, is on by default where it applies."""

from __future__ import annotations

import collections
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from edgepose.benchmarking.artifacts import discover
from edgepose.cli.main import cli
from edgepose.data import open_dataset
from edgepose.errors import EdgeposeError
from edgepose.exporting import ExportRequest, export
from edgepose.exporting.request import range_search_mode, validate
from edgepose.exporting.runner import PRECISIONS
from edgepose.quantization.calibration import CalibrationSet
from edgepose.quantization.range_search import activation_scales, apply_scale_factors, search_ranges
from edgepose.runtime.session import ort_predict, ort_session

from tests.conftest import shipped_range_search_defaults

CALIB = 37  # not a multiple of any chunk


def _card(path: Path) -> dict:
    return json.loads(path.with_name(path.name + ".json").read_text())


def _inits(path: Path) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}


def _kernels(path: Path) -> collections.Counter:
    """Operator counts of ONNX Runtime's fully optimised graph (the kernels that run)."""
    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        so.log_severity_level = 3
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return collections.Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node)


@pytest.fixture(scope="module", autouse=True)
def shipped_defaults(_module_recipes_unsearched):
    """Every test here runs with the range search's shipped defaults."""
    with shipped_range_search_defaults():
        yield


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_run, tiny_data, shipped_defaults):
    """fp32; plain and (default) searched safe; plain global; QAT of safe; the searched safe through the CLI."""
    out = tmp_path_factory.mktemp("rs")
    common = dict(checkpoint=tiny_run, data=tiny_data, calib_count=CALIB, parity_windows=16, log=lambda s: None)
    (fp32,) = export(ExportRequest(precision="fp32", out=out, **common))
    (plain,) = export(ExportRequest(precision="int8", recipe="safe", calib="minmax", range_search="off",
                                    out=out / "off", **common))
    (searched,) = export(ExportRequest(precision="int8", recipe="safe", calib="minmax", out=out / "on", **common))
    (global_plain,) = export(ExportRequest(precision="int8", recipe="global", calib="minmax", range_search="off",
                                           out=out / "off", **common))
    res = CliRunner().invoke(cli, ["export", str(tiny_run), "--precision", "int8", "--recipe", "safe", "--calib",
                                   "minmax", "--calib-count", str(CALIB), "--data", str(tiny_data), "--range-search",
                                   "on", "--out", str(out / "cli")])
    assert res.exit_code == 0, res.output
    (cli_graph,) = (out / "cli").glob("*int8-ptq-minmax-safe-ort-cpu.onnx")
    return {"fp32": fp32, "plain": plain, "searched": searched, "global_plain": global_plain, "cli": cli_graph}


@pytest.fixture(scope="module")
def calib_windows(tiny_data, exported):
    calib = CalibrationSet.from_dataset(open_dataset(tiny_data), CALIB, 0)
    assert _card(exported["searched"])["calibration"]["fingerprint"] == calib.fingerprint
    return calib.windows


def _mse(fp32: Path, qdq: Path, x: np.ndarray) -> float:
    ref = ort_predict(ort_session(fp32), x).astype(np.float64)
    return float(np.mean((ort_predict(ort_session(qdq), x).astype(np.float64) - ref) ** 2))


def test_the_default_safe_export_is_searched_and_says_so(exported):
    entry = _card(exported["searched"])["recipe"]["range_search"]
    assert entry["mode"] == "on" and entry["tensors"] == len(activation_scales(onnx.load(str(exported["plain"]))))
    assert entry["windows"] == CALIB  # fewer calibration windows than the search's subset: all of them
    assert entry["output_mse_after"] <= entry["output_mse_before"]
    assert entry["changed"] == len(entry["factors"]) and all(f != 1.0 for f in entry["factors"].values())
    assert _card(exported["plain"])["recipe"]["range_search"] is None
    # the CLI flag ships the same graph as the default
    assert exported["cli"].read_bytes() == exported["searched"].read_bytes()
    labels = {a.path.name: a.label for a in discover(exported["searched"].parent)}
    assert ("range-searched" in labels[exported["searched"].name]) == (entry["changed"] > 0)


def test_the_reported_errors_are_the_graphs_errors(exported, calib_windows):
    entry = _card(exported["searched"])["recipe"]["range_search"]
    assert _mse(exported["fp32"], exported["plain"], calib_windows) == pytest.approx(entry["output_mse_before"],
                                                                                    rel=1e-4)
    assert _mse(exported["fp32"], exported["searched"], calib_windows) == pytest.approx(entry["output_mse_after"],
                                                                                       rel=1e-4)


def test_only_the_chosen_scales_and_the_biases_after_them_change(exported):
    plain, searched = _inits(exported["plain"]), _inits(exported["searched"])
    assert plain.keys() == searched.keys()
    changed = {k for k in plain if plain[k].dtype != searched[k].dtype or not np.array_equal(plain[k], searched[k])}
    acts = {a.scale: a for a in activation_scales(onnx.load(str(exported["plain"])))}
    factors = _card(exported["searched"])["recipe"]["range_search"]["factors"]
    moved = {s for s, a in acts.items() if a.tensor in factors}
    biases = {n for s in moved for b in acts[s].biases for n in (b.values, b.scale)}
    assert moved and changed == moved | biases
    for s in moved:
        np.testing.assert_allclose(searched[s], plain[s] * factors[acts[s].tensor], rtol=1e-6)
    nodes = [(n.op_type, list(n.input), list(n.output)) for n in onnx.load(str(exported["plain"])).graph.node]
    assert nodes == [(n.op_type, list(n.input), list(n.output)) for n in onnx.load(str(exported["searched"])).graph.node]


def test_every_int32_bias_keeps_the_scale_onnx_runtime_assumes(exported):
    """QLinearConv reads an int32 bias at input scale × weight scale: after the search that must still hold, and
    the bias must hold the fp32 graph's float bias to within half of its step (as the quantizer writes it)."""
    proto = onnx.load(str(exported["searched"]))
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    floats = _inits(exported["fp32"])
    producer = {o: n for n in proto.graph.node for o in n.output}
    checked = 0
    for node in proto.graph.node:
        if node.op_type != "Conv" or len(node.input) < 3:
            continue
        x_dq, w_dq, b_dq = (producer.get(node.input[i]) for i in range(3))
        if not all(d is not None and d.op_type == "DequantizeLinear" for d in (x_dq, w_dq, b_dq)):
            continue
        x_scale, w_scale = inits[x_dq.input[1]], inits[w_dq.input[1]]
        np.testing.assert_allclose(inits[b_dq.input[1]], x_scale * w_scale, rtol=1e-5)
        float_bias = floats[b_dq.output[0]].astype(np.float64)  # the bias DQ writes the float bias's name
        step = inits[b_dq.input[1]].astype(np.float64)
        assert np.all(np.abs(inits[b_dq.input[0]] * step - float_bias) <= 0.5 * step * (1 + 1e-9))
        checked += 1
    assert checked >= 5


def test_moved_scales_leave_the_kernels_alone(exported, tmp_path):
    """On the all-int8 graph (QLinear Add, Mul, Sigmoid, MatMul, Softmax, pooling, shared-scale reshapes): every
    activation scale moved by a factor still gives ONNX Runtime's optimised graph the same operators, so no Q/DQ
    fusion is lost whatever the search keeps."""
    for factor in (0.5, 1.2):
        proto = onnx.load(str(exported["global_plain"]))
        acts = activation_scales(proto)
        assert apply_scale_factors(proto, {a.scale: factor for a in acts}) == len(acts) > 20
        moved = tmp_path / f"moved-{factor}.onnx"
        onnx.save(proto, str(moved))
        assert _kernels(moved) == _kernels(exported["global_plain"])


def test_search_repeats_exactly(exported, calib_windows, tmp_path):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    for p in (a, b):
        shutil.copyfile(exported["plain"], p)
        res = search_ranges(exported["fp32"], p, calib_windows, grid=(0.7, 1.0, 1.2), threads=1, parallel="intra")
    assert res.factors and res.mse_after < res.mse_before and res.runs == 1 + 2 * res.tensors
    assert a.read_bytes() == b.read_bytes() != exported["plain"].read_bytes()


def test_parallel_mode_does_not_change_the_result(exported, calib_windows, tmp_path):
    got = []
    for mode in ("intra", "batch"):
        p = tmp_path / f"{mode}.onnx"
        shutil.copyfile(exported["plain"], p)
        got.append((search_ranges(exported["fp32"], p, calib_windows[:11], grid=(0.5, 1.0), threads=2,
                                  parallel=mode).factors, p.read_bytes()))
    assert got[0] == got[1]


def test_a_graph_without_activation_qdq_is_left_untouched(exported, calib_windows, tmp_path):
    p = tmp_path / "fp32.onnx"
    shutil.copyfile(exported["fp32"], p)
    res = search_ranges(exported["fp32"], p, calib_windows)
    assert res.tensors == 0 and res.runs == 0 and p.read_bytes() == exported["fp32"].read_bytes()


@pytest.mark.parametrize("kw, message", [
    (dict(grid=(0.5, 0.8)), "including 1.0"),
    (dict(grid=(0.0, 1.0)), "positive factors"),
    (dict(sweeps=0), "sweeps must be ≥ 1"),
])
def test_bad_search_settings_are_refused_before_any_work(exported, calib_windows, tmp_path, kw, message):
    p = tmp_path / "q.onnx"
    shutil.copyfile(exported["plain"], p)
    with pytest.raises(EdgeposeError, match=message):
        search_ranges(exported["fp32"], p, calib_windows, **kw)
    with pytest.raises(EdgeposeError, match="at least one calibration window"):
        search_ranges(exported["fp32"], p, calib_windows[:0])
    assert p.read_bytes() == exported["plain"].read_bytes()


def test_the_mode_resolves_where_it_applies(tmp_path):
    def req(**kw):
        return ExportRequest(checkpoint=tmp_path / "x.safetensors", out=tmp_path, precision="int8", **kw)

    assert range_search_mode(req(recipe="safe"), "safe") == "on"
    assert range_search_mode(req(recipe="safe", range_search="off"), "safe") == "off"
    assert range_search_mode(req(recipe="safe", method="qat"), "safe") == "off"  # QAT's scales stay as calibrated
    assert range_search_mode(req(recipe="auto"), "auto") == "off"
    assert range_search_mode(req(max_drop=0.5), None) == "off"  # the guard's default
    assert range_search_mode(req(max_drop=0.5, range_search="on"), None) == "on"


@pytest.mark.parametrize("kw, message", [
    (dict(precision="int8", recipe="safe", range_search="maybe"), "unknown --range-search 'maybe'"),
    (dict(precision="int8", recipe="safe", range_search=True), r"True is 'on', False is 'off'"),
    (dict(precision="fp16", range_search="on"), "int8 PTQ graph"),
    (dict(precision="int8", recipe="safe", method="qat", range_search="on"), "QAT keeps the PTQ calibration's scales frozen"),
    (dict(precision="int8", recipe="auto", range_search="on"), "add --recipe safe"),
    (dict(precision="int8", recipe="checked", range_search="on"), "applies to the module recipes"),
    (dict(precision="int8", objective="latency", range_search="on"), "not to --objective plans"),
])
def test_range_search_is_refused_where_it_does_not_apply(tmp_path, kw, message):
    req = ExportRequest(checkpoint=tmp_path / "x.safetensors", out=tmp_path, **kw)
    with pytest.raises(EdgeposeError, match=message):
        validate(req, PRECISIONS)


def test_on_is_accepted_where_auto_exports_the_searched_safe_graph(tmp_path):
    for kw in (dict(recipe="auto", target="tensorrt"), dict(recipe="safe"), dict(max_drop=0.5)):
        validate(ExportRequest(checkpoint=tmp_path / "x.safetensors", out=tmp_path, precision="int8",
                               range_search="on", **kw), PRECISIONS)


def test_off_is_accepted_everywhere(tmp_path):
    for kw in (dict(precision="fp32"), dict(precision="int8", recipe="auto"), dict(precision="int8", max_drop=0.5)):
        validate(ExportRequest(checkpoint=tmp_path / "x.safetensors", out=tmp_path, range_search="off", **kw),
                 PRECISIONS)


def test_the_guard_builds_every_graph_with_the_searched_scales(tiny_run, tiny_data, calib_windows, tmp_path):
    """The probe applies the searched factors to every graph it builds, by scale initializer, so a rebuilt graph
    holds exactly the searched graph's values, and the scales ONNX Runtime's quantizer would override when computing them from
    ranges (a Softmax output's [0, 1]) keep their factor too; the guard's card records the search."""
    from edgepose.exporting.context import load_context

    req = ExportRequest(checkpoint=tiny_run, out=tmp_path, data=tiny_data, precision="int8", calib="minmax",
                        calib_count=CALIB, parity_windows=16, log=lambda s: None)
    ctx = load_context(req, tmp_path)
    probe = ctx.probe(calib=ctx.calibration())
    # the convolution groups (on this one-epoch model the all-int8 graph's output error does not move with any
    # single range, so its search keeps every range)
    convs = [g.name for g in probe.groups if g.kind == "conv"]
    direct = tmp_path / "direct.onnx"
    shutil.copyfile(probe.build(convs, tmp_path / "start.onnx"), direct)
    expected = search_ranges(probe.fp32_path, direct, calib_windows, threads=probe.threads)
    got = probe.search_ranges(convs, calib_windows)
    assert got.factors == expected.factors and got.factors
    rebuilt, searched = _inits(probe.build(convs, tmp_path / "rebuilt.onnx")), _inits(direct)
    assert rebuilt.keys() == searched.keys()
    assert all(rebuilt[k].dtype == v.dtype and np.array_equal(rebuilt[k], v) for k, v in searched.items())

    # every scale of the all-int8 graph, the Softmax outputs' included, takes a forced factor when built
    every = probe.group_names
    probe.scale_factors = {}
    plain_all = _inits(probe.build(every, tmp_path / "all-plain.onnx"))
    acts = activation_scales(onnx.load(str(tmp_path / "all-plain.onnx")))
    softmax = [a.scale for a in acts if a.tensor.startswith("softmax")]
    assert softmax
    probe.scale_factors = {a.scale: 0.7 for a in acts}
    forced = _inits(probe.build(every, tmp_path / "all-forced.onnx"))
    for a in acts:
        np.testing.assert_allclose(forced[a.scale], plain_all[a.scale] * 0.7, rtol=1e-6, err_msg=a.scale)

    common = dict(checkpoint=tiny_run, data=tiny_data, precision="int8", calib="minmax", calib_count=CALIB,
                  parity_windows=16, max_drop=100.0, log=lambda s: None)
    (guarded,) = export(ExportRequest(out=tmp_path / "guard", range_search="on", **common))
    entry = _card(guarded)["recipe"]["range_search"]
    assert entry["mode"] == "on" and entry["searched_on"] == f"{len(every)} of {len(every)} groups int8"
    assert entry["tensors"] == len(acts)
    (plain,) = export(ExportRequest(out=tmp_path / "guard-off", **common))
    assert _card(plain)["recipe"]["range_search"] is None  # the guard's default is off


def test_searched_with_bias_correction_and_on_the_tensorrt_layout(tiny_run, tiny_data, tmp_path):
    """Bias correction runs on the searched graph (its scales are the searched ones); the TensorRT layout, whose
    biases stay float, is searched with nothing to requantize."""
    common = dict(checkpoint=tiny_run, data=tiny_data, precision="int8", recipe="safe", calib="minmax",
                  calib_count=CALIB, parity_windows=16, log=lambda s: None)
    (searched,) = export(ExportRequest(out=tmp_path / "s", **common))
    (both,) = export(ExportRequest(out=tmp_path / "b", bias_correction="on", **common))
    card = _card(both)["recipe"]
    assert card["range_search"]["factors"] == _card(searched)["recipe"]["range_search"]["factors"]
    assert card["bias_correction"]["shipped"] and "-bc-" in both.name
    a, b = _inits(searched), _inits(both)
    scales = [x.scale for x in activation_scales(onnx.load(str(searched)))]
    assert all(np.array_equal(a[s], b[s]) for s in scales)
    (trt,) = export(ExportRequest(out=tmp_path / "t", target="tensorrt", **common))
    entry = _card(trt)["recipe"]["range_search"]
    assert entry["mode"] == "on" and entry["tensors"] > 0
    assert all(not x.biases for x in activation_scales(onnx.load(str(trt))))
