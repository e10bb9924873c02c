"""verify warns when an 8-bit-weight int8 bundle runs on an x86 CPU without VNNI (torch-free)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepose.runtime import bundle as rb
from edgepose.runtime import verify as rv

C, T, J = 540, 20, 15
X86 = frozenset({"sse2", "avx2", "fma"})


def _manifest(bits: int | None, reduce_range: bool | None = None, precision: str = "int8") -> dict:
    recipe = {}
    if bits is not None:
        recipe["weight_bits"] = bits
    if reduce_range is not None:
        recipe["reduce_range"] = reduce_range
    return {"model": {"precision": precision, "target": "ort-cpu", "recipe": recipe},
            "build": {"cpu": {"cpu_model": "AMD EPYC"}}}


@pytest.mark.parametrize("manifest, flags, vnni, warns", [
    (_manifest(8), X86, False, True),
    (_manifest(8), X86 | {"avx512_vnni"}, True, False),
    (_manifest(7), X86, False, False),
    (_manifest(None, reduce_range=False), X86, False, True),   # bundles from before weight_bits
    (_manifest(None, reduce_range=True), X86, False, False),
    (_manifest(8, precision="fp32"), X86, False, False),
    (_manifest(8), frozenset({"asimd", "asimddp"}), False, False),  # ARM: no u8·s8 pair saturation
])
def test_isa_warnings(monkeypatch, manifest, flags, vnni, warns):
    if "sse2" not in flags:
        monkeypatch.setattr("platform.machine", lambda: "aarch64")
    out = rv.isa_warnings(manifest, flags=flags, vnni=vnni)
    assert bool(out) == warns
    if warns:
        assert "VNNI" in out[0] and "--weight-bits 7" in out[0]


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _bundle(path: Path, shift: float, tolerance: dict, bits: int) -> Path:
    w = np.random.default_rng(0).normal(0, 0.05, (C, 2 * J)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["csi", "axes"], ["m"], keepdims=0),
         helper.make_node("MatMul", ["m", "w"], ["flat"]), helper.make_node("Reshape", ["flat", "shape"], ["keypoints"])],
        "tiny", [helper.make_tensor_value_info("csi", TensorProto.FLOAT, ["batch", C, T])],
        [helper.make_tensor_value_info("keypoints", TensorProto.FLOAT, ["batch", J, 2])],
        [numpy_helper.from_array(np.array([2], dtype=np.int64), "axes"), numpy_helper.from_array(w, "w"),
         numpy_helper.from_array(np.array([-1, J, 2], dtype=np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    x = np.random.default_rng(1).uniform(0, 1, (4, C, T)).astype(np.float32)
    y = x.mean(axis=2) @ w
    y = y.reshape(-1, J, 2) + shift * np.sign(np.random.default_rng(2).normal(size=(4, J, 2)))
    manifest = {"format": rb.FORMAT, "schema_version": rb.SCHEMA_VERSION, "edgepose_version": "test",
                "model": {"file": "model.onnx", "ort_file": None, "precision": "int8", "name": "hand-made",
                          "target": "ort-cpu", "recipe": {"weight_bits": bits}},
                "input": {"name": "csi", "dtype": "float32", "shape": ["batch", C, T],
                          "window": {"frames": T, "values_per_frame": C}},
                "stream": {"hop": 4, "max_hold_frames": 2},
                "output": {"name": "keypoints", "joints": [f"j{i}" for i in range(J)]},
                "golden": {"inputs": "golden/inputs.npy", "outputs": "golden/outputs.npy", "tolerance": tolerance},
                "build": {"latency": {"p50_ms": 0.05, "p99_ms": 0.1, "threads": 1}, "cpu": {"cpu_model": "AMD EPYC"}}}
    rb.write_bundle(path, manifest, {"model.onnx": model.SerializeToString(), "golden/inputs.npy": _npy(x),
                                     "golden/outputs.npy": _npy(y.astype(np.float32))})
    return path


def test_verify_reports_the_warning_and_the_mean_check(tmp_path, monkeypatch):
    monkeypatch.setattr(rv, "cpu_flags", lambda: X86)
    monkeypatch.setattr(rv, "has_vnni", lambda: False)
    tol = {"max_abs": 2e-2, "mean_abs": 2e-3}
    ok = rv.verify(_bundle(tmp_path / "ok.edgepose", 0.0, tol, 8), threads=1, seconds=0.1)
    assert ok.passed and ok.warnings and "WARNING" in ok.verdict and ok.to_dict()["warnings"] == ok.warnings
    quiet = rv.verify(_bundle(tmp_path / "seven.edgepose", 0.0, tol, 7), threads=1, seconds=0.1)
    assert quiet.passed and not quiet.warnings and "WARNING" not in quiet.verdict
    # every value within max_abs, but the whole golden set moved by 5e-3 on average: fails on the mean
    moved = rv.verify(_bundle(tmp_path / "moved.edgepose", 5e-3, tol, 7), threads=1, seconds=0.1)
    assert not moved.passed and "mean abs error" in moved.verdict
    # bundles without mean_abs keep the element-wise check only
    old = rv.verify(_bundle(tmp_path / "old.edgepose", 5e-3, {"max_abs": 2e-2}, 7), threads=1, seconds=0.1)
    assert old.passed
