"""QAT on the PTQ graph itself (recipe ``global``): the torch interpretation of a QDQ graph must
compute what ONNX Runtime computes, train every parameter, and write back exactly what it simulated."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from edgepose.data import open_dataset
from edgepose.errors import EdgeposeError
from edgepose.exporting import ExportRequest, export
from edgepose.exporting.fold import fold_batchnorm
from edgepose.exporting.onnx_fp32 import export_onnx
from edgepose.quantization.recipes import get_recipe
from edgepose.quantization.qat import build_qat_model
from edgepose.quantization.qat_graph import build_graph_qat
from edgepose.quantization.targets import get_target
from edgepose.runtime.session import ort_predict, ort_session
from edgepose.training import load_checkpoint


def _inits(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}


@pytest.fixture(scope="module")
def graphs(tmp_path_factory, tiny_run, tiny_data):
    """fp32, PTQ `global` and PTQ `convs` graphs of the tiny checkpoint, plus real test windows."""
    out = tmp_path_factory.mktemp("qat-graph")
    quiet = dict(data=tiny_data, calib_count=37, parity_windows=16, log=lambda s: None)
    (fp32,) = export(ExportRequest(checkpoint=tiny_run, out=out / "fp32", precision="fp32", **quiet))
    (glob,) = export(ExportRequest(checkpoint=tiny_run, out=out / "global", precision="int8", recipe="global", **quiet))
    (convs,) = export(ExportRequest(checkpoint=tiny_run, out=out / "convs", precision="int8", recipe="convs", **quiet))
    ds = open_dataset(tiny_data)
    x, _ = ds.read(ds.indices("test", clean=True)[:37])
    model, _ = load_checkpoint(tiny_run / "best.safetensors")
    folded = fold_batchnorm(model)
    names = {n for n, _ in folded.named_parameters()}
    return dict(fp32=fp32, glob=glob, convs=convs, x=x, folded=folded, names=names)


def _sim(g, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return g(torch.from_numpy(x)).numpy()


def test_graph_simulation_computes_what_onnx_runtime_computes(graphs):
    ptq, fp32 = onnx.load(str(graphs["glob"])), onnx.load(str(graphs["fp32"]))
    g = build_graph_qat(ptq, fp32, graphs["names"])
    counts = g.count()
    # every Q/DQ pair of the graph is simulated, well beyond the convolutions
    n_q = sum(n.op_type == "QuantizeLinear" for n in ptq.graph.node)
    n_conv = sum(n.op_type == "Conv" for n in ptq.graph.node)
    assert counts["activations"] >= n_q > 2 * n_conv
    assert counts["weights"] >= n_conv and counts["biases"] >= n_conv
    sim = _sim(g, graphs["x"])
    ref = ort_predict(ort_session(graphs["glob"], threads=1), graphs["x"])
    fp = ort_predict(ort_session(graphs["fp32"], threads=1), graphs["x"])
    err = np.linalg.norm(sim - ref, axis=-1)
    quant_err = np.linalg.norm(ref - fp, axis=-1)
    # the simulation sits far closer to the int8 graph than the int8 graph sits to fp32
    assert err.mean() < 0.25 * quant_err.mean(), (err.mean(), quant_err.mean())


def test_the_simulation_survives_a_deep_copy(graphs):
    """finetune snapshots state dicts; a module copy must run (node attributes are held by value)."""
    import copy

    g = build_graph_qat(onnx.load(str(graphs["glob"])), onnx.load(str(graphs["fp32"])), graphs["names"])
    twin = copy.deepcopy(g)
    np.testing.assert_array_equal(_sim(twin, graphs["x"]), _sim(g, graphs["x"]))


def test_unchanged_parameters_write_back_the_ptq_graph(graphs):
    ptq, fp32 = onnx.load(str(graphs["glob"])), onnx.load(str(graphs["fp32"]))
    out = build_graph_qat(ptq, fp32, graphs["names"]).to_qdq()
    a, b = _inits(ptq), _inits(out)
    assert a.keys() == b.keys()
    assert [n.SerializeToString() for n in ptq.graph.node] == [n.SerializeToString() for n in out.graph.node]
    total = differ = 0
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        if a[k].dtype.kind in "iu":
            total += a[k].size
            d = np.abs(a[k].astype(np.int64) - b[k].astype(np.int64))
            assert d.max(initial=0) <= 1, k  # at most a rounding tie away from ONNX Runtime's quantizer
            differ += int((d > 0).sum())
        else:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-12, err_msg=k)
    assert differ <= 1e-3 * total


def test_training_moves_every_parameter_and_ships_what_it_simulated(graphs, tmp_path):
    ptq, fp32 = onnx.load(str(graphs["glob"])), onnx.load(str(graphs["fp32"]))
    g = build_graph_qat(ptq, fp32, graphs["names"])
    x = torch.from_numpy(graphs["x"])
    with torch.no_grad():
        target = graphs["folded"](x) + 0.05
    opt = torch.optim.Adam([p for p in g.parameters() if p.requires_grad], lr=1e-3)
    before = {k: v.detach().clone() for k, v in g.params.items()}
    for _ in range(3):
        loss = (g(x) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    moved = [k for k, v in g.params.items() if v.requires_grad and not torch.equal(v, before[k])]
    assert len(moved) == sum(v.requires_grad for v in g.params.values()) == g.count()["trainable_tensors"] > 0
    frozen = [k for k, v in g.params.items() if not v.requires_grad]
    assert all(torch.equal(g.params[k], before[k]) for k in frozen)
    path = tmp_path / "tuned.onnx"
    onnx.save(g.to_qdq(), str(path))
    shipped = ort_predict(ort_session(path, threads=1), graphs["x"])
    sim = _sim(g, graphs["x"])
    old = ort_predict(ort_session(graphs["glob"], threads=1), graphs["x"])
    assert np.abs(shipped - old).mean() > 5 * np.abs(shipped - sim).mean()  # the change shipped, as simulated


def test_graph_and_conv_level_simulations_agree_on_a_conv_recipe(graphs, tmp_path):
    """Two independent simulations of the same `convs` PTQ graph: torch modules vs the interpreted graph."""
    ptq, fp32 = onnx.load(str(graphs["convs"])), onnx.load(str(graphs["fp32"]))
    g = build_graph_qat(ptq, fp32, graphs["names"])
    scoped = export_onnx(graphs["folded"], tmp_path / "scoped.onnx", graphs["x"].shape[1:])  # module scopes kept
    m = build_qat_model(graphs["folded"], scoped, ptq, get_recipe("convs"), get_target("ort-cpu"))
    a = _sim(g, graphs["x"])
    with torch.no_grad():
        b = m.fake(torch.from_numpy(graphs["x"])).numpy()
    assert np.abs(a - b).mean() < 1e-4 and np.abs(a - b).max() < 5e-2


def test_unsupported_ops_are_refused_by_name():
    x = helper.make_tensor_value_info("csi", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Erf", ["csi"], ["out"])], "g", [x], [y])
    proto = helper.make_model(graph)
    with pytest.raises(EdgeposeError, match="op type.*Erf.*not supported"):
        build_graph_qat(proto, proto, set())


def test_qat_export_of_the_global_recipe(tmp_path, tiny_run, tiny_data):
    (path,) = export(ExportRequest(checkpoint=tiny_run, out=tmp_path, data=tiny_data, precision="int8", method="qat",
                                   recipe="global", qat_epochs=1, qat_max_windows=64, calib_count=37, qat_schedule="cosine",
                                   parity_windows=32, log=lambda s: None))
    card = json.loads(path.with_name(path.name + ".json").read_text())
    assert card["method"] == "qat" and card["recipe"]["simulation"] == "graph"
    assert card["recipe"]["qat_schedule"] == "cosine"
    gate = card["parity"]["fake_quant_vs_onnx_int8"]
    assert abs(gate["reference_pck20"] - gate["candidate_pck20"]) <= 0.005
    assert [h["epoch"] for h in card["history"]] == [0, 1] and sum(h["kept"] for h in card["history"]) == 1
    proto = onnx.load(str(path))
    dq = {o for n in proto.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    users = {n.op_type for n in proto.graph.node for i in n.input if i in dq}
    assert {"Sigmoid", "Mul", "MatMul", "Softmax"} <= users  # int8 beyond the convolutions, as PTQ placed it
    with pytest.raises(EdgeposeError, match="unknown QAT schedule 'step'"):
        export(ExportRequest(checkpoint=tiny_run, out=tmp_path / "bad", data=tiny_data, precision="int8",
                             method="qat", qat_schedule="step", log=lambda s: None))
    with pytest.raises(EdgeposeError, match="ort-cpu target only"):
        export(ExportRequest(checkpoint=tiny_run, out=tmp_path / "trt", data=tiny_data, precision="int8",
                             method="qat", recipe="global", target="tensorrt", log=lambda s: None))
