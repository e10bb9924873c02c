"""``export_onnx`` exports a model once per process: the same model again gets the same bytes, any change re-exports."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from edgepose.exporting import onnx_fp32
from edgepose.exporting.onnx_fp32 import export_onnx, model_key


class Scaled(nn.Module):
    """A conv whose output ``forward`` scales by a plain attribute (not a parameter)."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.conv = nn.Conv1d(7, 3, 1)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * self.scale


def _run(path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"csi": x})[0]


def test_a_second_export_of_the_same_model_writes_the_same_bytes_without_exporting(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = Scaled()
    calls = []
    real = torch.onnx.export
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(onnx_fp32, "_EXPORTED", type(onnx_fp32._EXPORTED)())
    export_onnx(model, tmp_path / "a.onnx", (7, 5))
    proto = export_onnx(model, tmp_path / "b.onnx", (7, 5))
    assert len(calls) == 1
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes() == proto.SerializeToString()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a.onnx", "b.onnx"]  # written atomically, nothing left over


def test_a_changed_weight_attribute_shape_or_opset_exports_again(tmp_path, monkeypatch):
    torch.manual_seed(0)
    monkeypatch.setattr(onnx_fp32, "_EXPORTED", type(onnx_fp32._EXPORTED)())
    base = Scaled()
    key = model_key(base, (7, 5), 18)
    other_weight = Scaled()
    other_weight.load_state_dict(base.state_dict())
    with torch.no_grad():
        other_weight.conv.weight[0, 0, 0] += 1e-3
    other_attr = Scaled(scale=2.0)
    other_attr.load_state_dict(base.state_dict())
    assert model_key(other_weight, (7, 5), 18) != key
    assert model_key(other_attr, (7, 5), 18) != key
    assert model_key(base, (7, 6), 18) != key and model_key(base, (7, 5), 17) != key
    same = Scaled()
    same.load_state_dict(base.state_dict())
    assert model_key(same, (7, 5), 18) == key  # another instance with the same weights is the same graph
    # the attribute reaches the graph: a stale cached graph would compute the unscaled output
    x = np.random.default_rng(0).standard_normal((2, 7, 5)).astype(np.float32)
    export_onnx(base, tmp_path / "base.onnx", (7, 5))
    export_onnx(other_attr, tmp_path / "attr.onnx", (7, 5))
    np.testing.assert_allclose(_run(tmp_path / "attr.onnx", x), 2.0 * _run(tmp_path / "base.onnx", x), rtol=1e-5,
                               atol=1e-6)
