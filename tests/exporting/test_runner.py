"""Export layer: parity, cards, QDQ layouts, QAT's fake-quant ↔ shipped-graph agreement, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from edgepose.errors import EdgeposeError
from edgepose.exporting import ExportRequest, export
from edgepose.exporting.tensorrt import check_tensorrt_qdq, tensorrt_available


def _card(path: Path) -> dict:
    return json.loads(path.with_name(path.name + ".json").read_text())


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, tiny_run, tiny_data):
    out = tmp_path_factory.mktemp("art")
    paths = {}
    for key, kw in {
        "fp32": dict(precision="fp32"),
        "fp16": dict(precision="fp16"),
        "ptq": dict(precision="int8", recipe="safe", calib="minmax"),  # auto may ship fp32 on tiny
        "ptq_trt": dict(precision="int8", target="tensorrt"),
        "qat": dict(precision="int8", method="qat", qat_epochs=1, qat_max_windows=64),
    }.items():
        (paths[key],) = export(ExportRequest(checkpoint=tiny_run, out=out, data=tiny_data, calib_count=64,
                                             parity_windows=32, log=lambda s: None, **kw))
    return out, paths


def test_fp32_onnx_is_checked_dynamic_and_matches_torch(artifacts, tiny_run):
    import hashlib

    _, p = artifacts
    model = onnx.load(str(p["fp32"]))
    onnx.checker.check_model(model, full_check=True)
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param  # dynamic batch axis
    assert model.opset_import[0].version >= 17
    # BatchNorm folded: only the four behind the attention matmuls remain
    assert sum(n.op_type == "BatchNormalization" for n in model.graph.node) == 4
    card = _card(p["fp32"])
    assert card["opset"] == 18
    # the card's hashes are of the files on disk: the artifact itself and the checkpoint it came from
    assert card["sha256"] == hashlib.sha256(p["fp32"].read_bytes()).hexdigest()
    assert card["bytes"] == p["fp32"].stat().st_size
    assert card["parent"]["weights_sha256"] == hashlib.sha256((tiny_run / "best.safetensors").read_bytes()).hexdigest()


def test_fp32_onnx_matches_the_checkpoint_independently(artifacts, tiny_run, tiny_data):
    """Recompute parity here (torch checkpoint vs a fresh ORT session), not from the card export wrote."""
    from edgepose.data import open_dataset
    from edgepose.runtime.session import ort_predict, ort_session
    from edgepose.training import load_checkpoint

    _, p = artifacts
    model, _ = load_checkpoint(tiny_run / "best.safetensors")
    ds = open_dataset(tiny_data)
    x, _ = ds.read(ds.indices("test", clean=True)[:8])
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = ort_predict(ort_session(p["fp32"], threads=1), x)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() < 1e-4


def test_fp16_keeps_float_io(artifacts):
    _, p = artifacts
    model = onnx.load(str(p["fp16"]))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    assert _card(p["fp16"])["parity"]["test_windows"]["max_abs_error"] < 1e-2


def test_int8_ptq_layouts(artifacts):
    _, p = artifacts
    cpu = onnx.load(str(p["ptq"]))
    card = _card(p["ptq"])
    assert card["calibration"]["source"] == "clean training windows" and card["calibration"]["fingerprint"]
    assert card["recipe"]["per_channel"] and "attn_w.qkv" in card["recipe"]["float_convs"]
    inits = {i.name: numpy_helper.to_array(i) for i in cpu.graph.initializer}
    assert any(a.dtype == np.uint8 for a in inits.values())  # u8 activations on ort-cpu
    trt = onnx.load(str(p["ptq_trt"]))
    assert check_tensorrt_qdq(trt) == []
    assert _card(p["ptq_trt"])["tensorrt_qdq_problems"] == []
    # TensorRT layout: Q/DQ on conv inputs only, float bias
    assert not any(n.op_type == "DequantizeLinear" and "bias" in n.input[0] for n in trt.graph.node)


def test_qat_fake_quant_matches_the_shipped_int8_graph(artifacts):
    _, p = artifacts
    card = _card(p["qat"])
    gate = card["parity"]["fake_quant_vs_onnx_int8"]
    assert gate["max_abs_error"] < 5e-3
    assert abs(gate["reference_pck20"] - gate["candidate_pck20"]) <= 0.005
    model = onnx.load(str(p["qat"]))
    assert sum(n.op_type == "QuantizeLinear" for n in model.graph.node) > 10


def test_int8_is_smaller(artifacts):
    _, p = artifacts
    assert p["ptq"].stat().st_size < p["fp32"].stat().st_size
    # every quantized conv weight is stored as int8 (the tiny model's scales and graph overhead
    # weigh relatively more; the half model's ratio is a benchmark target)
    q = onnx.load(str(p["ptq"]))
    int8 = sum(numpy_helper.to_array(i).size for i in q.graph.initializer if i.data_type == onnx.TensorProto.INT8)
    assert int8 > 0.7 * _card(p["ptq"])["param_count"]  # the float convs are small


def test_bad_requests_leave_nothing_behind(tmp_path, tiny_run, tiny_data):
    out = tmp_path / "out"
    with pytest.raises(EdgeposeError, match="fp16 or int8"):
        export(ExportRequest(tiny_run, out, precision="fp32", engine=True))
    with pytest.raises(EdgeposeError, match="int8 only"):
        export(ExportRequest(tiny_run, out, precision="fp16", method="qat"))
    if not tensorrt_available()[0]:
        with pytest.raises(EdgeposeError, match="pip install 'edgepose\\[trt\\]'"):
            export(ExportRequest(tiny_run, out, precision="fp16", engine=True))
    with pytest.raises(EdgeposeError, match="nowhere: dataset folder not found"):
        export(ExportRequest(tiny_run, out, precision="int8", data=tmp_path / "nowhere", log=lambda s: None))
    assert not out.exists() or not any(out.iterdir())


def test_checkpoint_that_does_not_match_its_card(tmp_path, tiny_run):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    card = json.loads((run / "best.json").read_text())
    card["model"] = "wiflow-half"
    (run / "best.json").write_text(json.dumps(card))
    with pytest.raises(EdgeposeError, match="do not fit variant 'wiflow-half'"):
        export(ExportRequest(run, tmp_path / "o", precision="fp32"))


def test_corrupt_onnx_is_reported_by_bench(tmp_path, artifacts, tiny_data):
    import shutil

    from edgepose.benchmarking import TimingPlan, bench

    folder = tmp_path / "bad"
    folder.mkdir()
    _, p = artifacts
    for f in (p["fp32"], p["fp32"].with_name(p["fp32"].name + ".json")):
        shutil.copyfile(f, folder / f.name)
    (folder / p["fp32"].name).write_bytes(b"not an onnx file")
    res = bench(folder, "cpu", (1,), 1, TimingPlan(warmup=1, iters=2, min_seconds=0), tiny_data, log=lambda s: None)
    assert res["rows"] == [] and "load failed" in res["skipped"][0]["reason"]


def test_calibration_with_all_corrupt_training_windows(tmp_path, tiny_run, tiny_data):
    import shutil

    from edgepose.data import open_dataset

    d = tmp_path / "data"
    shutil.copytree(tiny_data, d)
    ds = open_dataset(d)
    w = np.load(d / "csi_windows.npy")
    w[ds.indices("train", clean=False)] = np.nan
    np.save(d / "csi_windows.npy", w)
    out = tmp_path / "o"
    with pytest.raises(EdgeposeError, match="no clean training windows"):
        export(ExportRequest(tiny_run, out, precision="int8", data=d, log=lambda s: None))
    assert not any(out.iterdir())


def _qdq_graph(zero_point: np.ndarray, scale: np.ndarray, axis: int | None = None) -> onnx.ModelProto:
    from onnx import helper

    attrs = {} if axis is None else {"axis": axis}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="q0", **attrs),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], name="dq0", **attrs)]
    inits = [numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zero_point, "zp")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 3])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4, 3])], inits)
    return helper.make_model(graph)


def test_tensorrt_checker_flags_each_rule():
    good = _qdq_graph(np.zeros(4, np.int8), np.full(4, 0.1, np.float32), axis=0)
    assert check_tensorrt_qdq(good) == []
    u8 = check_tensorrt_qdq(_qdq_graph(np.zeros((), np.uint8), np.array(0.1, np.float32)))
    assert len(u8) == 2 and all("zero point type uint8" in m for m in u8)
    asym = check_tensorrt_qdq(_qdq_graph(np.array(3, np.int8), np.array(0.1, np.float32)))
    assert len(asym) == 2 and all("non-zero zero point" in m for m in asym)
    axis = check_tensorrt_qdq(_qdq_graph(np.zeros(3, np.int8), np.full(3, 0.1, np.float32), axis=1))
    assert len(axis) == 2 and all("per-channel axis 1" in m for m in axis)


@pytest.mark.parametrize("recipe", ["convs", "global"])
def test_recipes_convs_and_global(tmp_path, tiny_run, tiny_data, recipe):
    (path,) = export(ExportRequest(checkpoint=tiny_run, out=tmp_path, data=tiny_data, precision="int8", recipe=recipe,
                                   calib_count=37, parity_windows=16, log=lambda s: None))
    card = _card(path)
    assert card["recipe"]["recipe"] == recipe and card["recipe"]["float_convs"] == []
    proto = onnx.load(str(path))
    ops = {n.op_type for n in proto.graph.node}
    q_inputs = {n.input[0] for n in proto.graph.node if n.op_type == "QuantizeLinear"}
    if recipe == "global":
        # global quantizes beyond convolutions: some Q node feeds a non-Conv consumer
        consumers = {i: n.op_type for n in proto.graph.node if n.op_type == "DequantizeLinear" for i in n.output}
        users = {n.op_type for n in proto.graph.node for i in n.input if i in consumers}
        assert users - {"Conv", "QuantizeLinear"}, users
    else:
        assert "QLinearConv" not in ops and len(q_inputs) > 5
