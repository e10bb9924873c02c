"""The ort-cpu weight range (``weight_bits``): chosen at export, never by the exporting CPU unless asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepose.errors import EdgeposeError
from edgepose.quantization import targets as tg
from edgepose.quantization.ptq import quantize_nodes, scheme_params


def test_weight_bits_choose_reduce_range_whatever_the_cpu(monkeypatch):
    for vnni in (True, False):
        monkeypatch.setattr(tg, "has_vnni", lambda v=vnni: v)
        assert tg.get_target("ort-cpu", "7").reduce_range() and tg.get_target("ort-cpu", 7).weight_qmax() == 63
        assert not tg.get_target("ort-cpu", "8").reduce_range() and tg.get_target("ort-cpu", 8).weight_qmax() == 127
        assert tg.get_target("ort-cpu", "7").isa_portable() and not tg.get_target("ort-cpu", "8").isa_portable()
    assert tg.get_target("ort-cpu").weight_bits == tg.DEFAULT_WEIGHT_BITS
    assert tg.get_target("tensorrt", "8").isa_portable() and not tg.get_target("tensorrt").reduce_range()


def test_auto_is_the_old_rule(monkeypatch):
    monkeypatch.setattr(tg, "cpu_flags", lambda: frozenset({"avx2", "sse2"}))
    monkeypatch.setattr(tg, "_x86", lambda: True)
    monkeypatch.setattr(tg, "has_vnni", lambda: False)
    auto = tg.get_target("ort-cpu", "auto")
    assert auto.reduce_range() and tg.weight_scheme(auto)["weight_bits_decided_by"] == "exporting CPU without VNNI"
    monkeypatch.setattr(tg, "has_vnni", lambda: True)
    assert not auto.reduce_range()


def test_card_fields_record_the_choice():
    p8 = scheme_params(tg.get_target("ort-cpu", "8"), "minmax")
    assert p8["weight_bits"] == 8 and p8["isa_portable"] is False and "AVX2" in p8["portability_note"]
    assert p8["reduce_range"] is False and p8["weight_bits_option"] == "8"
    p7 = scheme_params(tg.get_target("ort-cpu", "7"), "minmax")
    assert p7["weight_bits"] == 7 and p7["isa_portable"] is True and p7["reduce_range"] is True
    assert "portability_note" not in p7


def test_bad_weight_bits_are_refused():
    with pytest.raises(EdgeposeError, match="weight bits"):
        tg.check_weight_bits("6")
    with pytest.raises(EdgeposeError, match="ort-cpu"):
        tg.check_weight_bits("7", "tensorrt")
    assert tg.check_weight_bits(8) == "8"


def test_request_validates_weight_bits(tmp_path):
    from edgepose.exporting.request import ExportRequest, validate

    req = ExportRequest(checkpoint=tmp_path / "x", out=tmp_path, precision="int8", weight_bits=7)
    validate(req, ["fp32", "int8"])
    assert req.weight_bits == "7"
    with pytest.raises(EdgeposeError, match="weight bits"):
        validate(ExportRequest(checkpoint=tmp_path / "x", out=tmp_path, precision="int8", weight_bits="16"),
                 ["fp32", "int8"])


def _conv_model(path: Path) -> None:
    w = np.random.default_rng(0).normal(0, 1, (8, 6, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")], "c",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 5, 5])], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))


@pytest.mark.parametrize("bits, limit", [("7", 64), ("8", 127)])
def test_seven_bit_weights_cannot_saturate_a_u8s8_pair(tmp_path, bits, limit):
    """ONNX Runtime's reduced int8 range is [-64, 64]: 2·255·64 = 32640 fits int16, 2·255·127 does not."""
    src, out = tmp_path / "f.onnx", tmp_path / f"q{bits}.onnx"
    _conv_model(src)
    quantize_nodes(src, out, {"x": (0.0, 1.0), "y": (-3.0, 3.0)}, tg.get_target("ort-cpu", bits), "minmax",
                   nodes=None, op_types=["Conv"])
    ints = [numpy_helper.to_array(i) for i in onnx.load(str(out)).graph.initializer if i.data_type == TensorProto.INT8]
    peak = max(int(np.abs(a.astype(np.int32)).max()) for a in ints)
    assert peak == limit
    assert (2 * 255 * peak <= 32767) == (bits == "7")
