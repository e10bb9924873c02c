"""Bias correction: the int8 convolutions' output means move back to fp32's, only biases change, bad use is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from edgepose.benchmarking.artifacts import discover
from edgepose.cli.main import cli
from edgepose.data import open_dataset
from edgepose.errors import EdgeposeError
from edgepose.exporting import ExportRequest, export
from edgepose.exporting.request import validate
from edgepose.exporting.runner import PRECISIONS
from edgepose.quantization.bias_correction import _sites, correct_biases
from edgepose.quantization.calibration import CalibrationSet
from edgepose.quantization.calibrators import tensor_batches

CALIB = 37  # not a multiple of the 64-window chunk


def _card(path: Path) -> dict:
    return json.loads(path.with_name(path.name + ".json").read_text())


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_run, tiny_data):
    """fp32, plain safe and bias-corrected safe (the latter through the CLI flag) of the tiny model, plus TensorRT's."""
    out = tmp_path_factory.mktemp("bc")
    common = dict(checkpoint=tiny_run, out=out, data=tiny_data, calib_count=CALIB, parity_windows=16, log=lambda s: None)
    (fp32,) = export(ExportRequest(precision="fp32", **common))
    (plain,) = export(ExportRequest(precision="int8", recipe="safe", calib="minmax", **common))
    res = CliRunner().invoke(cli, ["export", str(tiny_run), "--precision", "int8", "--recipe", "safe", "--calib",
                                   "minmax", "--calib-count", str(CALIB), "--data", str(tiny_data), "--bias-correction",
                                   "on", "--out", str(out)])
    assert res.exit_code == 0, res.output
    (corrected,) = out.glob("*int8-ptq-minmax-bc-safe-ort-cpu.onnx")
    (trt,) = export(ExportRequest(precision="int8", recipe="safe", calib="minmax", target="tensorrt",
                                  bias_correction="on", **common))
    (trt_plain,) = export(ExportRequest(precision="int8", recipe="safe", calib="minmax", target="tensorrt", **common))
    (checked,) = export(ExportRequest(precision="int8", recipe="safe", calib="minmax", bias_correction="checked",
                                      **{**common, "out": out / "checked"}))
    return {"fp32": fp32, "plain": plain, "corrected": corrected, "trt": trt, "trt_plain": trt_plain,
            "checked": checked}


@pytest.fixture(scope="module")
def calib_windows(tiny_data, exported):
    calib = CalibrationSet.from_dataset(open_dataset(tiny_data), CALIB, 0)
    # the windows recomputed here are the ones the export calibrated on
    assert _card(exported["corrected"])["calibration"]["fingerprint"] == calib.fingerprint
    return calib.windows


def _mean_error(fp32: Path, qdq: Path, windows: np.ndarray) -> dict[str, np.ndarray]:
    """Per corrected convolution, the per-channel mean of fp32 − int8 output on ``windows``."""
    proto = onnx.load(str(qdq))
    sites, _ = _sites(proto)
    ref = next(tensor_batches(onnx.load(str(fp32)), [s.output for s in sites], windows, len(windows)))[0]
    got = next(tensor_batches(proto, [s.tap for s in sites], windows, len(windows)))[0]
    return {s.output: (ref[s.output].astype(np.float64) - got[s.tap]).mean(axis=(0, *range(2, got[s.tap].ndim)))
            for s in sites}


# The TensorRT layout's conv outputs stay float and its bias is float: each mean comes back exactly.
# ort-cpu reads each output after its 8-bit requantization, whose rounding and clipping a bias shift moves only
# approximately. Correcting every conv from one pass (double-counting what upstream layers pass on) left
# 0.39 / 0.26 of the error on these graphs; one conv at a time in graph order leaves 0.14 / 7e-6.
@pytest.mark.parametrize("pair, left", [(("plain", "corrected"), 0.25), (("trt_plain", "trt"), 1e-3)])
def test_correction_brings_conv_output_means_back_to_fp32(exported, calib_windows, pair, left):
    before = _mean_error(exported["fp32"], exported[pair[0]], calib_windows)
    after = _mean_error(exported["fp32"], exported[pair[1]], calib_windows)
    assert before.keys() == after.keys() and len(before) == _card(exported[pair[1]])["recipe"]["bias_correction"]["convs"]
    total_before = sum(np.abs(v).sum() for v in before.values())
    total_after = sum(np.abs(v).sum() for v in after.values())
    assert total_before > 0
    assert total_after < left * total_before


def test_correction_also_holds_on_windows_it_was_not_measured_on(exported, tiny_data):
    ds = open_dataset(tiny_data)
    x, _ = ds.read(ds.indices("test", clean=True))
    before = _mean_error(exported["fp32"], exported["plain"], x)
    after = _mean_error(exported["fp32"], exported["corrected"], x)
    assert sum(np.abs(v).sum() for v in after.values()) < sum(np.abs(v).sum() for v in before.values())


@pytest.mark.parametrize("pair", [("plain", "corrected"), ("trt_plain", "trt")])
def test_only_the_corrected_biases_change(exported, pair):
    a, b = (onnx.load(str(exported[k])) for k in pair)
    assert [(n.op_type, list(n.input), list(n.output)) for n in a.graph.node] == \
        [(n.op_type, list(n.input), list(n.output)) for n in b.graph.node]
    ia = {i.name: numpy_helper.to_array(i) for i in a.graph.initializer}
    ib = {i.name: numpy_helper.to_array(i) for i in b.graph.initializer}
    assert ia.keys() == ib.keys()
    changed = {k for k in ia if not np.array_equal(ia[k], ib[k])}
    # the bias initializers, found here without the module's site search: a Conv's third input, or what its
    # DequantizeLinear reads
    dq_input = {n.output[0]: n.input[0] for n in b.graph.node if n.op_type == "DequantizeLinear"}
    biases = {dq_input.get(n.input[2], n.input[2]) for n in b.graph.node if n.op_type == "Conv" and len(n.input) > 2}
    assert changed and changed <= biases
    assert all(ia[k].dtype == ib[k].dtype for k in changed)


def test_card_and_label_say_the_graph_is_corrected(exported):
    card = _card(exported["corrected"])["recipe"]
    assert card["bias_correction"]["mode"] == "on"
    assert card["bias_correction"]["windows"] == CALIB and card["bias_correction"]["max_shift"] > 0
    assert card["bias_correction"]["skipped"] == 0  # every int8 conv of the tiny model has a bias of its own
    assert _card(exported["plain"])["recipe"]["bias_correction"] is None
    assert card["bias_correction"]["shipped"] is True
    labels = {a.path: a.label for a in discover(exported["fp32"].parent)}
    assert "bias-corrected" in labels[exported["corrected"]]
    assert "bias-corrected" not in labels[exported["plain"]]
    checked = _card(exported["checked"])["recipe"]["bias_correction"]
    assert ("bias-corrected" in labels[exported["checked"]]) == checked["shipped"]


def test_checked_ships_the_graph_that_scores_higher_on_validation(exported, tiny_data):
    from edgepose.metrics import window_pck
    from edgepose.runtime.session import ort_predict, ort_session

    check = _card(exported["checked"])["recipe"]["bias_correction"]["check"]
    ds = open_dataset(tiny_data)
    idx = ds.indices("val", clean=True)
    x, y = ds.read(idx)
    scores = {k: float(window_pck(ort_predict(ort_session(exported[k], threads=2), x), y, 0.2, ds.layout.torso).mean())
              for k in ("plain", "corrected")}
    assert check["windows"] == len(idx)
    assert check["plain_pck20"] == pytest.approx(scores["plain"]) and \
        check["corrected_pck20"] == pytest.approx(scores["corrected"])
    ships = "corrected" if scores["corrected"] > scores["plain"] else "plain"
    assert check["ships"] == ships
    # the shipped bytes are that graph's, under its own name
    assert exported["checked"].read_bytes() == exported[ships].read_bytes()
    assert ("-bc-" in exported["checked"].name) == (ships == "corrected")


def _context(ds, fp32: Path):
    """The parts of an export context that the correction and its check read."""
    from types import SimpleNamespace

    from edgepose.data import SplitSpec

    return SimpleNamespace(dataset=ds, spec=SplitSpec(), int8_source_onnx=lambda: fp32,
                           req=SimpleNamespace(threads=2, log=lambda s: None))


@pytest.mark.parametrize("plain, corrected, ships", [(0.5, 0.6, "corrected"), (0.6, 0.5, "plain"),
                                                      (0.5, 0.5, "plain")])
def test_the_check_ships_the_corrected_graph_only_when_it_scores_higher(exported, tiny_data, monkeypatch, plain,
                                                                         corrected, ships):
    import edgepose.exporting.corrected as mod

    ds = open_dataset(tiny_data)
    n = len(ds.indices("val", clean=True))
    scores = iter([np.full(n, plain), np.full(n, corrected)])  # the check scores plain first
    monkeypatch.setattr(mod, "window_pck", lambda *a, **k: next(scores))
    check = mod.validation_check(_context(ds, exported["fp32"]), exported["plain"], exported["corrected"])
    assert check["ships"] == ships and check["windows"] == n
    assert check["corrected_minus_plain_pp"]["delta"] == pytest.approx(100 * (corrected - plain))
    assert check["scored_on"]["cpu_flags"] and check["threads"] == 2


@pytest.mark.parametrize("ships", ["corrected", "plain"])
def test_correct_ptq_returns_the_graph_the_check_chose(exported, tiny_data, tmp_path, calib_windows, monkeypatch,
                                                       ships):
    from types import SimpleNamespace

    import edgepose.exporting.corrected as mod

    monkeypatch.setattr(mod, "validation_check", lambda *a: {"ships": ships, "plain_pck20": 0.5,
                                                              "corrected_pck20": 0.6 if ships == "corrected" else 0.4})
    plain, twin = tmp_path / "plain.onnx", tmp_path / "twin.onnx"
    shutil.copy(exported["plain"], plain)
    path, entry = mod.correct_ptq(_context(open_dataset(tiny_data), exported["fp32"]), plain, twin,
                                  SimpleNamespace(windows=calib_windows), "checked")
    assert path == (twin if ships == "corrected" else plain) and entry["shipped"] == (ships == "corrected")
    assert plain.read_bytes() == exported["plain"].read_bytes()  # the plain graph is never corrected in place
    assert twin.read_bytes() == exported["corrected"].read_bytes()  # the twin is what --bias-correction on ships


def test_checked_refuses_a_split_without_clean_validation_windows(exported, tmp_path):
    from types import SimpleNamespace

    import edgepose.exporting.corrected as mod

    empty = SimpleNamespace(indices=lambda *a, **k: np.array([], dtype=int), path=tmp_path / "data")
    ctx = SimpleNamespace(dataset=empty, spec=None, req=SimpleNamespace(threads=2, log=lambda s: None))
    with pytest.raises(EdgeposeError, match="has none: use on or off"):
        mod.correct_ptq(ctx, exported["plain"], tmp_path / "twin.onnx", SimpleNamespace(windows=None), "checked")
    assert not (tmp_path / "twin.onnx").exists()


def test_the_label_follows_the_graph_that_shipped():
    from edgepose.benchmarking.artifacts import ArtifactFile

    def label(entry):
        card = {"recipe": {"calibrator": "minmax", "recipe": "safe", "bias_correction": entry}}
        return ArtifactFile(Path("a.onnx"), "onnx", "int8", "ptq", card).label

    assert "bias-corrected" in label({"mode": "on", "shipped": True})
    assert "bias-corrected" not in label({"mode": "checked", "shipped": False})
    assert "bias-corrected" not in label(None)


def test_a_graph_without_int8_convolutions_is_left_alone(exported, tmp_path, calib_windows):
    copy = tmp_path / "fp32.onnx"
    shutil.copy(exported["fp32"], copy)
    res = correct_biases(exported["fp32"], copy, calib_windows[:1])
    assert (res.convs, res.skipped) == (0, 0)
    assert copy.read_bytes() == exported["fp32"].read_bytes()


def test_a_foreign_fp32_graph_is_refused(exported, tmp_path, calib_windows):
    proto = onnx.load(str(exported["fp32"]))
    for node in proto.graph.node:
        node.output[:] = [o + "_other" for o in node.output]
    foreign = tmp_path / "foreign.onnx"
    onnx.save(proto, str(foreign))
    target = tmp_path / "int8.onnx"
    shutil.copy(exported["plain"], target)
    with pytest.raises(EdgeposeError, match="not the graph this int8 model was quantized from"):
        correct_biases(foreign, target, calib_windows)


def test_a_failed_write_leaves_the_int8_graph_as_it_was(exported, tmp_path, calib_windows, monkeypatch):
    target = tmp_path / "int8.onnx"
    shutil.copy(exported["plain"], target)

    def half_written(proto, path):
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(onnx, "save", half_written)
    with pytest.raises(OSError, match="disk full"):
        correct_biases(exported["fp32"], target, calib_windows)
    assert target.read_bytes() == exported["plain"].read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["int8.onnx"]


@pytest.mark.parametrize("kw, message", [
    (dict(precision="int8", recipe="safe", bias_correction="maybe"), "unknown --bias-correction 'maybe'"),
    (dict(precision="int8", recipe="safe", bias_correction=True), r"True is 'on', False is 'off'"),
    (dict(precision="int8", recipe="safe", bias_correction="checked", target="tensorrt"), "use on or off there"),
    (dict(precision="fp32"), "int8 PTQ graph"),
    (dict(precision="int8", method="qat"), "int8 PTQ graph"),
    (dict(precision="int8", recipe="auto"), "recipe 'auto' chooses its graph"),
    (dict(precision="int8", recipe="checked"), "recipe 'checked' chooses its graph"),
    (dict(precision="int8", recipe="guarded"), "recipe 'guarded' chooses its graph"),
    (dict(precision="int8", recipe="attention-float"), "recipe 'attention-float' chooses its graph"),
    (dict(precision="int8", recipe="safe", max_drop=0.5), "not to --max-drop or --objective"),
    (dict(precision="int8", recipe="safe", objective="latency"), "not to --max-drop or --objective"),
])
def test_bias_correction_is_refused_where_it_does_not_apply(tmp_path, kw, message):
    req = ExportRequest(checkpoint=tmp_path / "x.safetensors", out=tmp_path, **{"bias_correction": "on", **kw})
    with pytest.raises(EdgeposeError, match=message):
        validate(req, PRECISIONS)
