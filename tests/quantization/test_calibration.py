"""Calibrators: batch independence, each does what its name says, any window count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgepose.data import SplitSpec, open_dataset
from edgepose.quantization.calibration import CalibrationSet
from edgepose.quantization.calibrators import HIST_BINS, collect_stats, compute_ranges, entropy_threshold
from edgepose.exporting.fold import fold_batchnorm
from edgepose.exporting.onnx_fp32 import export_onnx
from edgepose.quantization.recipes import get_recipe
from edgepose.quantization.ptq import quantize_ptq
from edgepose.quantization.targets import get_target
from edgepose.models import create


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cal") / "tiny.onnx"
    export_onnx(fold_batchnorm(create("wiflow-tiny").eval()), path, (540, 20), 18)
    return path


def _windows(n: int, outlier: float | None = None, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(0, 0.2, (n, 540, 20)).astype(np.float32)
    if outlier is not None:
        x[n // 2, 7, 3] = outlier
    return x


def _activation_scales(path: Path) -> dict[str, float]:
    """Scale of every QuantizeLinear node (activations), keyed by the tensor it quantizes."""
    proto = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    return {n.input[0]: float(inits[n.input[1]]) for n in proto.graph.node
            if n.op_type == "QuantizeLinear" and inits[n.input[1]].ndim == 0}


def _calib_set(x: np.ndarray) -> CalibrationSet:
    return CalibrationSet(x, np.arange(len(x)), "test", 0, requested=len(x), available=len(x))


@pytest.mark.parametrize("calibrator", ["minmax", "percentile", "entropy"])
def test_ranges_do_not_depend_on_batching(tiny_onnx, calibrator):
    x = _windows(37, outlier=1.3)
    ref = compute_ranges(tiny_onnx, x, calibrator, chunk=64)
    assert "csi" in ref and len(ref) > 10  # the input and the activations: an empty table would compare equal
    for chunk in (1, 7):
        other = compute_ranges(tiny_onnx, x, calibrator, chunk=chunk)
        assert other.keys() == ref.keys()
        for name, (lo, hi) in ref.items():
            assert other[name] == pytest.approx((lo, hi), rel=1e-6, abs=1e-7), (calibrator, chunk, name)


def test_minmax_qdq_scales_identical_for_batches_of_1_7_64(tiny_onnx, tmp_path):
    calib = _calib_set(_windows(37))
    scales = []
    for chunk in (1, 7, 64):
        out = tmp_path / f"q{chunk}.onnx"
        quantize_ptq(tiny_onnx, out, calib, get_recipe("safe"), get_target("ort-cpu"), "minmax", chunk=chunk)
        scales.append(_activation_scales(out))
    assert len(scales[0]) > 10
    for other in scales[1:]:
        assert other.keys() == scales[0].keys()
        for k, v in scales[0].items():
            assert other[k] == pytest.approx(v, rel=1e-6), k


def test_each_calibrator_does_what_its_name_says_on_outliers(tiny_onnx):
    x = _windows(64, outlier=1.45)
    r = {c: compute_ranges(tiny_onnx, x, c)["csi"] for c in ("minmax", "percentile", "entropy")}
    true_lo, true_hi = float(x.min()), float(x.max())
    assert r["minmax"] == pytest.approx((true_lo, true_hi), abs=1e-6)  # never clips
    # 99.999th percentile of 691,200 values leaves ~7 values per side outside: the outlier must be clipped
    assert r["percentile"][1] < 1.2 < true_hi
    assert r["percentile"][0] > true_lo
    assert r["entropy"][1] < 1.2 < true_hi  # a single far outlier is not worth quantization levels
    assert r["entropy"] != r["percentile"]


def test_entropy_keeps_a_compact_distribution_and_clips_a_long_tail():
    # uniform on [0, 1]: nothing to gain from clipping
    uniform = np.full(HIST_BINS, 1000)
    assert entropy_threshold(uniform, 1.0) > 0.9
    # Laplace-like: most mass near 0, a long thin tail to 1.0
    edges = (np.arange(HIST_BINS) + 0.5) / HIST_BINS
    tail = np.round(1e7 * np.exp(-edges / 0.02)).astype(np.int64)
    tail[-1] += 1
    assert entropy_threshold(tail, 1.0) < 0.5


def test_symmetric_ranges_are_symmetric(tiny_onnx):
    x = _windows(9, outlier=1.4)
    for c in ("minmax", "percentile", "entropy"):
        ranges = compute_ranges(tiny_onnx, x, c, symmetric=True)
        assert len(ranges) > 10 and ranges["csi"][1] > 0
        for lo, hi in ranges.values():
            assert lo == pytest.approx(-hi)


def test_minmax_and_entropy_artifacts_differ(tiny_onnx, tmp_path):
    """The first round shipped byte-identical minmax and entropy artifacts; they must differ."""
    calib = _calib_set(_windows(40, outlier=1.45))
    paths = {}
    for c in ("minmax", "entropy", "percentile"):
        paths[c] = tmp_path / f"{c}.onnx"
        quantize_ptq(tiny_onnx, paths[c], calib, get_recipe("safe"), get_target("ort-cpu"), c)
    s = {c: _activation_scales(p) for c, p in paths.items()}
    assert s["minmax"]["csi"] > s["entropy"]["csi"]
    assert s["minmax"]["csi"] > s["percentile"]["csi"]
    assert paths["minmax"].read_bytes() != paths["entropy"].read_bytes()


@pytest.mark.parametrize("n", [1, 2, 37])
def test_any_window_count(tiny_onnx, n):
    stats = collect_stats(tiny_onnx, _windows(n), histograms=True, chunk=64)
    assert stats.windows == n
    assert "csi" in stats.tensors and len(stats.tensors) > 10
    assert all(s.count > 0 for s in stats.tensors.values())


def test_calib_count_larger_than_data_is_reported(tiny_data):
    ds = open_dataset(tiny_data)
    pool = len(ds.indices("train", clean=True, spec=SplitSpec()))
    calib = CalibrationSet.from_dataset(ds, pool + 100, 0, SplitSpec())
    d = calib.describe()
    assert calib.short and d["windows"] == pool and d["requested"] == pool + 100
    assert str(pool) in d["note"]
    exact = CalibrationSet.from_dataset(ds, pool, 0, SplitSpec())
    assert not exact.short and "note" not in exact.describe()


# -- property-based: any count, any values → valid ranges or an EdgeposeError ---------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from edgepose.errors import EdgeposeError  # noqa: E402


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 9), scale=st.sampled_from([0.0, 1e-6, 0.2, 50.0]),
       poison=st.sampled_from([None, np.nan, np.inf, -np.inf]), calibrator=st.sampled_from(["minmax", "percentile",
                                                                                           "entropy"]),
       chunk=st.integers(1, 5))
def test_calibration_property(tiny_onnx, n, scale, poison, calibrator, chunk):
    x = np.random.default_rng(n).normal(0, 1, (n, 540, 20)).astype(np.float32) * scale
    if poison is not None and n:
        x[n - 1, 3, 4] = poison
    try:
        ranges = compute_ranges(tiny_onnx, x, calibrator, chunk=chunk)
    except EdgeposeError as exc:
        assert n == 0 or poison is not None, exc
        return
    assert n >= 1 and poison is None
    assert "csi" in ranges and len(ranges) > 10
    for lo, hi in ranges.values():
        assert np.isfinite(lo) and np.isfinite(hi) and lo <= hi


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(-2, 400), seed=st.integers(0, 3))
def test_calibration_set_property(tiny_data, count, seed):
    ds = open_dataset(tiny_data)
    try:
        calib = CalibrationSet.from_dataset(ds, count, seed, SplitSpec())
    except EdgeposeError:
        assert count < 1
        return
    pool = set(ds.indices("train", clean=True, spec=SplitSpec()).tolist())
    assert 1 <= len(calib.indices) == min(count, len(pool)) and set(calib.indices.tolist()) <= pool
    assert np.isfinite(calib.windows).all() and calib.windows.shape[1:] == ds.window_shape
