"""Batch-parallel execution: shard bounds, the shard pool, OrtRunner, the predictor, the timing adapters
and the bench/plan plumbing of ``parallel``."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgepose.errors import EdgeposeError
from edgepose.runtime.parallel import (DEFAULT_PARALLEL, PARALLEL_MODES, ShardPool, check_parallel, shard_bounds,
                                       usable_cpus)
from edgepose.runtime.predictor import Predictor
from edgepose.runtime.session import OrtRunner, ort_predict
from tests.runtime.test_runtime import _model_bytes, _reference, _windows, make_bundle


@pytest.mark.parametrize("n, workers, sizes", [(37, 2, [19, 18]), (64, 2, [32, 32]), (1, 2, [1]), (0, 3, []),
                                               (5, 8, [1] * 5), (293, 3, [98, 98, 97]), (7, 1, [7])])
def test_shard_bounds_cover_the_batch_in_order(n, workers, sizes):
    bounds = shard_bounds(n, workers)
    assert [b - a for a, b in bounds] == sizes
    assert [i for a, b in bounds for i in range(a, b)] == list(range(n))  # contiguous, in order, each once


def test_shard_bounds_and_modes_refuse_nonsense():
    with pytest.raises(ValueError):
        shard_bounds(3, 0)
    with pytest.raises(ValueError):
        shard_bounds(-1, 2)
    with pytest.raises(EdgeposeError, match="unknown parallel mode 'threads'.*batch, intra"):
        check_parallel("threads")
    assert DEFAULT_PARALLEL == "batch" and set(PARALLEL_MODES) == {"batch", "intra"}


def test_shard_pool_runs_calls_at_once_and_returns_them_in_order():
    pool = ShardPool(2)
    both = threading.Barrier(2, timeout=5)  # passes only when both calls run at the same time

    def call(v):
        def f():
            both.wait()
            return v, threading.current_thread().name
        return f

    out = pool.run([call("a"), call("b")])
    assert [v for v, _ in out] == ["a", "b"]
    assert out[0][1] == threading.current_thread().name and out[1][1].startswith("edgepose-shard")
    with pytest.raises(ValueError, match="3 calls for 2 workers"):
        pool.run([call(1)] * 3)
    pool.close()


def test_shard_pool_raises_only_after_every_call_finished():
    pool = ShardPool(2)
    done = []

    def slow():
        time.sleep(0.2)
        done.append(True)

    def fails():
        raise RuntimeError("shard failed")

    with pytest.raises(RuntimeError, match="shard failed"):
        pool.run([fails, slow])
    assert done == [True]  # the worker's call was not left running
    with pytest.raises(RuntimeError, match="shard failed"):
        pool.run([slow, fails])
    pool.close()


@pytest.mark.parametrize("n", [1, 2, 37, 64])
def test_ort_runner_batch_mode_gives_the_same_numbers_as_one_call(n):
    model = _model_bytes()
    x = _windows(n)
    want = _reference(model, x)
    batch = OrtRunner(model, threads=2, parallel="batch")
    intra = OrtRunner(model, threads=2, parallel="intra")
    assert batch.workers == 2 and intra.workers == 1
    np.testing.assert_allclose(batch.run(x), want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(intra.run(x), want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ort_predict(batch, x, batch=16), want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(batch.bind(x)(), want, rtol=0, atol=1e-6)  # the timed call returns the output too
    batch.close()


def test_ort_runner_shards_run_on_separate_threads_with_one_thread_sessions():
    runner = OrtRunner(_model_bytes(), threads=2, parallel="batch")
    seen = []
    real = runner.session.run

    def spy(names, feed):
        seen.append((threading.current_thread().name, len(feed["csi"])))
        return real(names, feed)

    runner.session.run = spy
    runner.run(_windows(37))
    assert sorted(n for _, n in seen) == [18, 19] and len({t for t, _ in seen}) == 2
    assert runner.session.get_session_options().intra_op_num_threads == 1
    assert runner.mode == "batch" and "up to 2 shard(s) at once" in runner.describe()
    intra = OrtRunner(_model_bytes(), threads=2, parallel="intra")
    assert intra.session.get_session_options().intra_op_num_threads == 2 and intra.mode == "intra"
    assert "2 intra-op thread(s)" in intra.describe()


def test_batch_mode_runs_intra_with_a_gpu_provider_first_and_says_so():
    # the CUDA provider is not in this onnxruntime build: ONNX Runtime falls back to the CPU, and the
    # runner must not shard what it believes is a GPU session
    r = OrtRunner(_model_bytes(), threads=2, parallel="batch",
                  providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert not r.sharded and r.mode == "intra" and r.workers == 1
    assert "shards only on the CPU provider" in r.describe()


def test_ort_runner_refuses_negative_threads():
    with pytest.raises(EdgeposeError, match="threads must be ≥ 0"):
        OrtRunner(_model_bytes(), threads=-1, parallel="batch")


def test_ort_runner_batch_mode_defaults_to_the_usable_cpus():
    assert OrtRunner(_model_bytes(), threads=0, parallel="batch").workers == usable_cpus()
    assert OrtRunner(_model_bytes(), threads=0, parallel="intra").workers == 1


def test_predictor_parallel_modes_agree_and_a_bad_mode_is_refused_before_loading(tmp_path):
    bundle = make_bundle(tmp_path / "p.edgepose")
    x = _windows(37)
    a = Predictor.load(bundle, threads=2, parallel="batch")
    b = Predictor.load(bundle, threads=2, parallel="intra")
    assert a.runner.workers == 2 and b.runner.workers == 1
    np.testing.assert_array_equal(a.predict(x).values, b.predict(x).values)
    with pytest.raises(EdgeposeError, match="unknown parallel mode"):
        Predictor.load(bundle, parallel="shards")


_ADAPTER_CHECK = """
import sys
from pathlib import Path
from edgepose.errors import EdgeposeError
from edgepose.runtime.parallel import PARALLEL_MODES
from edgepose.timing.adapters import ADAPTERS
from tests.runtime.test_runtime import _windows
adapter = ADAPTERS[sys.argv[1]]
ok, why = adapter.available()
assert ok, f"{sys.argv[1]} is part of the dev extra: {why}"
import numpy as np
outs = {}
for mode in PARALLEL_MODES:
    prepare = adapter.load(Path(sys.argv[2]), 2, mode)
    for n in (1, 37):
        outs[mode, n] = np.asarray(prepare(_windows(n))())  # the first output, shards concatenated
for n in (1, 37):
    assert outs["batch", n].shape == (n, 15, 2), outs["batch", n].shape
    np.testing.assert_allclose(outs["batch", n], outs["intra", n], rtol=0, atol=1e-5)
try:
    adapter.load(Path(sys.argv[2]), 2, "shards")
except EdgeposeError as exc:
    assert "unknown parallel mode" in str(exc)
else:
    raise AssertionError("an unknown mode was accepted")
print("ok")
"""


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_timing_adapters_run_both_modes_on_odd_batches(runtime, tmp_path):
    # in a child process: after two OpenVINO 2026.4 models have been compiled in one process, a later
    # SIGTERM or SIGINT to it (tests/runtime/test_runtime.py sends one) ended in a segmentation fault here
    # (OpenVINO 2026.4.1)
    import subprocess
    import sys

    model = tmp_path / "m.onnx"
    model.write_bytes(_model_bytes())
    r = subprocess.run([sys.executable, "-c", _ADAPTER_CHECK, runtime, str(model)], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[2], timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_profile_cache_key_separates_parallel_modes():
    from edgepose.quantization.planning.timer import profile_key
    from edgepose.timing.adapters import ADAPTERS

    a = profile_key("0" * 64, "ort-cpu/minmax", ADAPTERS["onnxruntime"], 2, "batch")
    b = profile_key("0" * 64, "ort-cpu/minmax", ADAPTERS["onnxruntime"], 2, "intra")
    assert a != b and a["parallel"] == "batch" and b["parallel"] == "intra"


def test_verify_and_the_module_cli_record_the_mode_that_ran(tmp_path):
    import json
    import subprocess
    import sys

    from edgepose.runtime.verify import verify

    bundle = make_bundle(tmp_path / "v.edgepose")  # its build latency predates the mode: intra
    report = verify(bundle, threads=2, seconds=0.1)
    assert report.latency["parallel"] == "batch" and "batch mode" in report.verdict
    assert report.reference["parallel"] == "intra" and not report.warnings  # no latency check: nothing to warn
    checked = verify(bundle, threads=2, seconds=0.1, max_slowdown=1e6)
    assert any("ran in intra mode, this check in batch mode" in w for w in checked.warnings)
    same = verify(bundle, threads=2, seconds=0.1, max_slowdown=1e6, parallel="intra")
    assert same.latency["parallel"] == "intra" and not same.warnings
    r = subprocess.run([sys.executable, "-m", "edgepose.runtime", "verify", str(bundle), "--threads", "2",
                        "--seconds", "0.1", "--parallel", "intra", "--json"], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)["latency"]["parallel"] == "intra", r.stderr
