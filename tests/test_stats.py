"""Paired bootstrap over recordings, paired speed ratios, the probe rule, MAC counting and the peak formula."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.benchmarking.paired import clear_of, ratio_summary, spread
from edgepose.benchmarking.peak import achieved, machine_peak
from edgepose.timing.disturbance import moved
from edgepose.stats import bootstrap_grouped, group_sums, paired_bootstrap_delta


def _recordings(rng, n_rec=30, per_rec=40, joints=15, shift=0.0):
    """Per-window joint hit fractions for two models; windows of one recording share a difficulty."""
    groups = np.repeat(np.arange(n_rec), per_rec)
    p = rng.uniform(0.3, 0.8, n_rec)[groups]  # the recording effect: all its windows alike
    a = rng.binomial(joints, p) / joints
    b = rng.binomial(joints, np.clip(p + shift, 0, 1)) / joints
    return a, b, groups


def test_identical_predictions_give_exactly_zero():
    rng = np.random.default_rng(0)
    a, _, g = _recordings(rng)
    ci = paired_bootstrap_delta(a, a.copy(), g)
    assert (ci.delta_pp, ci.low_pp, ci.high_pp) == (0.0, 0.0, 0.0)
    assert ci.spans_zero and ci.recordings == 30


def test_interval_covers_a_known_shift():
    # b is 5 pp better in expectation; the 95 % interval should hold −5 (a − b) in most data sets
    covered = 0
    for seed in range(40):
        a, b, g = _recordings(np.random.default_rng(seed), shift=0.05)
        ci = paired_bootstrap_delta(a, b, g, replicates=500, seed=seed)
        covered += ci.low_pp <= -5.0 <= ci.high_pp
        assert ci.low_pp <= ci.delta_pp <= ci.high_pp
    assert covered >= 33  # nominal 38 of 40; a broken interval (unpaired, window-level) misses far more often


def test_pairing_narrows_the_interval():
    # with a strong recording effect, resampling both models together cancels it; independent draws do not
    rng = np.random.default_rng(1)
    a, b, g = _recordings(rng, shift=0.02)
    paired = paired_bootstrap_delta(a, b, g, seed=0)
    _, sa, n = group_sums(a, g)
    _, sb, _ = group_sums(b, g)
    draws = np.random.default_rng(5).multinomial(len(n), np.full(len(n), 1 / len(n)), size=(2, 2000))
    unpaired = 100 * (draws[0] @ sa / (draws[0] @ n) - draws[1] @ sb / (draws[1] @ n))
    width_unpaired = np.percentile(unpaired, 97.5) - np.percentile(unpaired, 2.5)
    assert paired.high_pp - paired.low_pp < 0.5 * width_unpaired


def test_resamples_recordings_not_windows():
    # correlated windows: a window-level bootstrap would be much narrower than the recording-level one
    rng = np.random.default_rng(2)
    a, b, g = _recordings(rng, n_rec=12, per_rec=100, shift=0.0)
    b = np.where(g % 2 == 0, np.clip(a + 0.2, 0, 1), a)  # half the recordings differ a lot, half not at all
    by_recording = paired_bootstrap_delta(a, b, g)
    by_window = paired_bootstrap_delta(a, b, np.arange(len(a)))
    assert (by_recording.high_pp - by_recording.low_pp) > 3 * (by_window.high_pp - by_window.low_pp)


def test_bootstrap_rejects_mismatched_inputs():
    with pytest.raises(ValueError):
        paired_bootstrap_delta(np.ones(5), np.ones(4), np.zeros(5))
    with pytest.raises(ValueError):
        bootstrap_grouped(np.ones(3), np.ones(3), np.ones(2))


def test_ratio_summary_leaves_disturbed_rounds_out():
    base = [10.0, 10.0, 10.0, 20.0, 10.0]
    art = [5.0, 5.0, 5.0, 5.0, 5.5]
    rec = ratio_summary(base, art, used=[True, True, True, False, True])
    assert rec["n"] == 4 and rec["max"] == pytest.approx(2.0)  # round 3's 4× is out
    assert rec["rounds"][3] == pytest.approx(4.0)  # but kept for inspection
    everything = ratio_summary(base, art, used=[False] * 5)
    assert everything["all_rounds_disturbed"] and everything["n"] == 5


def test_clear_of_needs_separated_spreads():
    fast = spread([1.5, 1.6, 1.55, 1.58, 1.52])
    one = spread([1.0] * 5)
    near = spread([0.97, 1.02, 1.05, 0.99, 1.01])
    assert clear_of(fast, one) and not clear_of(one, fast)
    assert not clear_of(near, one)  # overlapping: a tie


def test_probe_moved():
    assert moved([1.0, 1.05, 0.99]) == pytest.approx(1.05 / 0.99 - 1)
    assert moved([]) == 0.0


def test_peak_formula():
    vnni = machine_peak(flags=frozenset({"avx2", "fma", "avx512f", "avx512_vnni"}), cores=2, ghz=2.5)
    assert vnni.gmacs("fp32") == pytest.approx(2 * 2.5 * 512 / 32)
    assert vnni.gmacs("int8") == pytest.approx(2 * 2.5 * 512 / 8)
    assert vnni.gmacs("fp16") == vnni.gmacs("fp32")  # no fp16 FMA: runs on the fp32 units
    assert vnni.gmacs("fp32", threads=1) == pytest.approx(2.5 * 16)
    avx2 = machine_peak(flags=frozenset({"avx2", "fma"}), cores=2, ghz=2.5)
    assert avx2.isa == "avx2" and avx2.gmacs("int8") == pytest.approx(vnni.gmacs("int8") / 2)
    a = achieved(1_000_000, 64, 2.0, 80.0)
    assert a["gmacs_per_s"] == pytest.approx(32.0) and a["fraction_of_peak"] == pytest.approx(0.4)
    assert a["floor_ms"] == pytest.approx(0.8) and a["x_floor"] == pytest.approx(2.5)


def _tiny_graph(tmp_path, fp16: bool = False):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dt = np.float16 if fp16 else np.float32
    et = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    w = numpy_helper.from_array(np.zeros((8, 4, 3), dt), "w")          # Conv1d 4→8, k=3, pad 1, T=10
    m = numpy_helper.from_array(np.zeros((10, 6), dt), "m")            # MatMul [.., 8, 10] × [10, 6]
    nodes = [helper.make_node("Cast", ["x"], ["xc"], to=et),
             helper.make_node("Conv", ["xc", "w"], ["c"], pads=[1, 1]),
             helper.make_node("Sigmoid", ["c"], ["s"]),
             helper.make_node("MatMul", ["s", "m"], ["y"])]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 10])],
                          [helper.make_tensor_value_info("y", et, ["batch", 8, 6])], [w, m])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / ("t16.onnx" if fp16 else "t.onnx")
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("fp16", [False, True])
def test_count_macs_by_hand(tmp_path, fp16):
    from edgepose.benchmarking.macs import count_macs

    res = count_macs(_tiny_graph(tmp_path, fp16))
    conv = 8 * 10 * (4 * 3)    # output elements × (in channels × kernel)
    matmul = 8 * 6 * 10        # output elements × reduced dim
    assert res["by_op"] == {"Conv": conv, "MatMul": matmul}
    assert res["per_window"] == conv + matmul and res["int8_per_window"] == 0


def test_count_macs_counts_a_conv_as_int8_only_when_input_and_weight_are_dequantized(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgepose.benchmarking.macs import count_macs

    inits = [numpy_helper.from_array(np.zeros((8, 4, 3), np.int8), "wq"),
             numpy_helper.from_array(np.ones(8, np.float32), "ws"),
             numpy_helper.from_array(np.zeros((8, 4, 3), np.float32), "wf"),
             numpy_helper.from_array(np.zeros((10, 6), np.float32), "m"),
             numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(128, np.uint8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws"], ["wd"], axis=0),
             helper.make_node("Conv", ["xd", "wd"], ["c"], pads=[1, 1]),    # int8: input and weight dequantized
             helper.make_node("Conv", ["xd", "wf"], ["c2"], pads=[1, 1]),   # fp32: a float weight (a region's edge)
             helper.make_node("Add", ["c", "c2"], ["a"]),
             helper.make_node("MatMul", ["a", "m"], ["y"])]                 # fp32: float operands
    g = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 10])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8, 6])], inits)
    path = tmp_path / "q.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    res = count_macs(path)
    conv = 8 * 10 * (4 * 3)
    assert res["int8_per_window"] == conv and res["per_window"] == 2 * conv + 8 * 6 * 10


def test_count_macs_names_the_file_of_a_broken_graph(tmp_path):
    from edgepose.benchmarking.macs import count_macs
    from edgepose.errors import EdgeposeError

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(EdgeposeError, match="bad.onnx"):
        count_macs(bad)


def test_interleaved_timing_alternates_blocks_and_counts_both():
    from edgepose.timing.rounds import TimingPlan, measure_interleaved

    calls: list[str] = []
    plan = TimingPlan(warmup=0, iters=6, min_seconds=0.0, block_seconds=0.0)  # blocks of one call
    a, b = measure_interleaved(lambda: calls.append("a"), lambda: calls.append("b"), lambda: None, 4, plan)
    timed = calls[1:]  # the first call sizes the blocks
    assert timed[:8] == list("abbaabba")
    assert a["iters"] >= 6 and b["iters"] >= 6 and a["batch"] == b["batch"] == 4
