"""The torch-free runtime: import hygiene, window rules, Predictor, streaming, bundle safety, CLI.

These tests build a tiny hand-written ONNX graph and bundle (no training, no export), so they
run in seconds; tests/test_deploy.py covers bundles built by ``edgepose package``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepose.interrupt import Terminated, terminate_as_interrupt
from edgepose.runtime import bundle as rb
from edgepose.runtime.errors import BundleError, InputError
from edgepose.runtime.predictor import Predictor
from edgepose.runtime.verify import verify
from edgepose.runtime.window import CORRUPT_ABS_LIMIT, FrameRing, as_windows, window_ok

C, T, J = 540, 20, 15
REPO = Path(__file__).resolve().parents[2]


def _model_bytes(seed: int = 0) -> bytes:
    """csi [N, 540, 20] → mean over frames → MatMul [540, 30] → keypoints [N, 15, 2]."""
    w = np.random.default_rng(seed).normal(0, 0.05, (C, 2 * J)).astype(np.float32)
    nodes = [helper.make_node("ReduceMean", ["csi", "axes"], ["m"], keepdims=0),
             helper.make_node("MatMul", ["m", "w"], ["flat"]),
             helper.make_node("Reshape", ["flat", "shape"], ["keypoints"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("csi", TensorProto.FLOAT, ["batch", C, T])],
        [helper.make_tensor_value_info("keypoints", TensorProto.FLOAT, ["batch", J, 2])],
        [numpy_helper.from_array(np.array([2], dtype=np.int64), "axes"), numpy_helper.from_array(w, "w"),
         numpy_helper.from_array(np.array([-1, J, 2], dtype=np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _windows(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (n, C, T)).astype(np.float32)


def _manifest(tol: float = 1e-4) -> dict:
    return {"format": rb.FORMAT, "schema_version": rb.SCHEMA_VERSION, "edgepose_version": "test",
            "model": {"file": "model.onnx", "ort_file": None, "precision": "fp32", "name": "hand-made"},
            "input": {"name": "csi", "dtype": "float32", "shape": ["batch", C, T],
                      "window": {"frames": T, "values_per_frame": C}},
            "stream": {"hop": 4, "max_hold_frames": 2},
            "output": {"name": "keypoints", "joints": [f"j{i}" for i in range(J)]},
            "golden": {"inputs": "golden/inputs.npy", "outputs": "golden/outputs.npy", "tolerance": {"max_abs": tol}},
            "build": {"latency": {"p50_ms": 0.05, "p99_ms": 0.1, "threads": 1}}}


def _reference(model: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return sess.run(None, {"csi": x})[0]


def make_bundle(path: Path, outputs_shift: float = 0.0, extra: dict | None = None) -> Path:
    model = _model_bytes()
    x = _windows(4)
    y = _reference(model, x) + outputs_shift
    members = {"model.onnx": model, "golden/inputs.npy": _npy(x), "golden/outputs.npy": _npy(y.astype(np.float32)),
               **(extra or {})}
    rb.write_bundle(path, _manifest(), members)
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("rt") / "hand.edgepose")


@pytest.fixture(scope="module")
def pred(bundle) -> Predictor:
    return Predictor.load(bundle, threads=1)


# -- import hygiene ------------------------------------------------------------------------------

def test_runtime_imports_nothing_heavy():
    code = ("import sys\n"
            "import edgepose.runtime, edgepose.runtime.__main__\n"
            "from edgepose.runtime import Predictor, Bundle, verify, extract\n"
            "import edgepose.runtime.commands, edgepose.runtime.cpu, edgepose.interrupt\n"
            "heavy = sorted(m for m in ('torch', 'onnx', 'click', 'matplotlib', 'scipy') if m in sys.modules)\n"
            "print(','.join(heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == ""


# -- windows -------------------------------------------------------------------------------------

def test_corruption_rule_matches_the_dataset_rule():
    from edgepose.data.base import CORRUPT_ABS_LIMIT as DATA_LIMIT
    from edgepose.data.base import scan_corrupt

    assert CORRUPT_ABS_LIMIT == DATA_LIMIT
    x = _windows(8)
    x[1, 3, 4] = np.nan
    x[2, 0, 0] = np.inf
    x[3, 5, 5] = -np.inf
    x[4, 9, 9] = 1.5001
    x[5, 9, 9] = -1.6
    x[6, 9, 9] = 1.5  # exactly the limit is clean
    x[7, 9, 9] = 3.4e38
    assert (window_ok(x) == ~scan_corrupt(x)).all()
    assert window_ok(x).tolist() == [True, False, False, False, False, False, True, False]


def test_as_windows_validates_shape_and_dtype():
    assert as_windows(np.zeros((C, T), np.float64), (C, T)).shape == (1, C, T)
    assert as_windows(np.zeros((3, C, T), np.float16), (C, T)).dtype == np.float32
    with pytest.raises(InputError, match=r"shape \[N, 540, 20\]"):
        as_windows(np.zeros((2, T, C), np.float32), (C, T))
    with pytest.raises(InputError, match="floating point"):
        as_windows(np.zeros((2, C, T), np.int16), (C, T))
    big = as_windows(np.full((1, C, T), 1e300), (C, T))  # float64 overflow → inf → corrupt
    assert not window_ok(big)[0]


# -- predictor -----------------------------------------------------------------------------------

def test_predict_matches_bare_session_and_refuses_corrupt_windows(pred, bundle):
    x = _windows(6, seed=5)
    x[2, 10, 3] = np.nan
    x[4, 0, 0] = 2.0
    out = pred.predict(x, batch=2)
    assert out.ok.tolist() == [True, True, False, True, False, True]
    assert out.status[2].startswith("corrupt") and "non-finite" in out.status[2]
    assert out.status[4].startswith("corrupt") and "> 1.5" in out.status[4]
    assert out.pose(2) is None and out.pose(4) is None
    assert np.isfinite(out.values).all()  # no NaN anywhere, corrupt rows never hold model output
    assert out.keypoints.mask[2].all() and not out.keypoints.mask[0].any()
    ref = _reference(rb.Bundle.open(bundle).read("model.onnx"), x[out.ok])
    np.testing.assert_allclose(out.values[out.ok], ref, atol=1e-6)
    assert np.isnan(out.with_nan()[4]).all()
    recs = list(out.records())
    assert recs[2] == {"window": 2, "status": out.status[2], "keypoints": None} and len(recs[0]["keypoints"]) == J


def test_single_window_fast_path_keeps_the_rule(pred):
    x = _windows(1, seed=9)
    out = pred.predict(x)
    assert out.ok.tolist() == [True] and out.pose(0).shape == (J, 2)
    np.testing.assert_allclose(out.values, pred.predict(np.concatenate([x, x])).values[:1], atol=1e-6)
    for bad in (np.nan, np.inf, -np.inf, 1.6, -1.6):
        y = x.copy()
        y[0, 5, 5] = bad
        res = pred.predict(y[0])  # one [C, T] window
        assert res.ok.tolist() == [False] and res.pose(0) is None and res.status[0].startswith("corrupt")
    with pytest.raises(ValueError):
        out.ok[0] = False  # the shared one-window mask is read-only


def test_predict_rejects_wrong_input(pred):
    with pytest.raises(InputError):
        pred.predict(np.zeros((1, C, T + 1), np.float32))
    with pytest.raises(InputError):
        pred.predict(np.zeros((1, C, T), np.int32))


def test_unknown_provider_is_refused(bundle):
    with pytest.raises(InputError, match="not available"):
        Predictor.load(bundle, providers=["NoSuchExecutionProvider"])


def test_stream_hops_and_matches_windows(pred):
    frames = np.random.default_rng(2).uniform(0, 1, (40, C)).astype(np.float32)
    poses = list(pred.stream(frames, hop=5))
    assert [p.frame for p in poses] == [19, 24, 29, 34, 39]
    windows = np.stack([frames[p.frame - T + 1 : p.frame + 1].T for p in poses])
    want = pred.predict(windows).values
    np.testing.assert_allclose(np.stack([p.keypoints for p in poses]), want, atol=1e-6)
    assert [p.frame for p in pred.stream(frames)] == [19, 23, 27, 31, 35, 39]  # manifest hop 4


def test_stream_nan_frames_and_gaps(pred):
    frames = [f for f in np.random.default_rng(3).uniform(0, 1, (80, C)).astype(np.float32)]
    frames[22] = frames[22].copy()
    frames[22][7] = np.nan
    held = list(frames)
    held[45] = None  # one lost frame: held from frame 44
    poses = {p.frame: p for p in pred.stream(held, hop=1)}
    # every window holding frame 22 (frames 22..41) is corrupt, the others are fine
    for f, p in poses.items():
        assert (p.status == "ok") == (not 22 <= f <= 41), (f, p.status)
        assert (p.keypoints is None) == (p.status != "ok")
    filled = list(frames)
    filled[45] = frames[44]
    ref = {p.frame: p for p in pred.stream(filled, hop=1)}
    np.testing.assert_allclose(poses[50].keypoints, ref[50].keypoints, atol=1e-6)
    # a gap longer than max_hold (2) gives 'gap' statuses, no pose
    gap = list(frames[:50]) + [None, None, None] + list(frames[50:])
    st = {p.frame: p.status for p in pred.stream(gap, hop=1)}
    assert st[49] == "ok" and st[52].startswith("gap") and st[71].startswith("gap") and st[72] == "ok"
    with pytest.raises(InputError, match="frame 0"):
        list(pred.stream([np.zeros(C + 1, np.float32)]))


def test_frame_ring_orders_oldest_first():
    ring = FrameRing(3, 4, max_hold=0)
    for i in range(6):
        ring.push(np.full(3, i / 10, np.float32))
    assert ring.full and ring.status() == "ok"
    assert ring.window()[0].tolist() == pytest.approx([0.2, 0.3, 0.4, 0.5])


# -- bundle integrity and safety -----------------------------------------------------------------

def test_changed_bytes_are_refused_before_any_session(bundle, tmp_path, monkeypatch):
    import edgepose.runtime.predictor as predictor_mod

    made = []  # recorded, not raised: Predictor.load turns a session's exception into a BundleError

    def no_session(*a, **k):
        made.append(a)
        raise AssertionError("a session was created for a damaged bundle")

    monkeypatch.setattr(predictor_mod, "OrtRunner", no_session)
    data = bundle.read_bytes()
    positions = sorted(set(np.linspace(0, len(data) - 1, 41).astype(int).tolist()
                           + [data.find(b"manifest.json"), data.find(b'"precision"'), len(data) - 1]))
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 0x01
        p = tmp_path / "bad.edgepose"
        p.write_bytes(bytes(bad))
        with pytest.raises(BundleError):
            Predictor.load(p)
    p.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(BundleError, match="seal"):
        rb.Bundle.open(p)
    assert not made
    with pytest.raises(BundleError):  # the spy itself works: an intact bundle reaches it
        Predictor.load(bundle)
    assert len(made) == 1


def _sealed_zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]], manifest_names=None) -> Path:
    """A zip with a manifest listing ``manifest_names`` (default: every entry) and a valid seal."""
    import hashlib

    names = [e[0].filename if isinstance(e[0], zipfile.ZipInfo) else e[0] for e in entries]
    listed = names if manifest_names is None else manifest_names
    data = dict((n, d) for n, (_, d) in zip(names, entries))
    table = {n: {"sha256": hashlib.sha256(data.get(n, b"")).hexdigest(), "bytes": len(data.get(n, b""))} for n in listed}
    manifest = {**_manifest(), "members": table}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        for info, d in entries:
            zf.writestr(info, d)
        zf.comment = b"\0" * rb._SEAL_LEN
    rb.seal(path)
    return path


def _link(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


@pytest.mark.parametrize("entries, listed, message", [
    ([("/etc/evil", b"x")], None, "absolute path"),
    ([("../evil", b"x")], None, r"escapes the bundle"),
    ([("golden/../../evil", b"x")], None, r"escapes the bundle"),
    ([("C:/evil", b"x")], None, "absolute path"),
    ([("dir\\evil", b"x")], None, "backslash"),
    ([(_link("model.onnx", stat.S_IFLNK | 0o777), b"/etc/passwd")], None, "symbolic link"),
    ([(_link("model.onnx", stat.S_IFCHR | 0o666), b"")], None, "device"),
    ([(_link("model.onnx", stat.S_IFIFO | 0o666), b"")], None, "device, pipe"),
    ([("model.onnx", b"x"), ("extra.bin", b"y")], ["model.onnx"], "not listed in manifest"),
    ([("model.onnx", b"x")], ["model.onnx", "golden/inputs.npy"], "listed in manifest.json but missing"),
    ([("model.onnx", b"\0" * (4 << 20))], None, r"expands \d+x"),
])
def test_unsafe_archives_are_refused(tmp_path, entries, listed, message):
    path = _sealed_zip(tmp_path / "evil.edgepose", entries, listed)
    with pytest.raises(BundleError, match=message):
        rb.Bundle.open(path)
    with pytest.raises(BundleError, match=message):
        rb.extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
    assert not (tmp_path.parent / "evil").exists()


def test_oversized_members_and_other_archives(tmp_path):
    path = _sealed_zip(tmp_path / "big.edgepose", [("model.onnx", os.urandom(5000))])
    with pytest.raises(BundleError, match="over the 4000-byte limit"):
        rb.Bundle.open(path, rb.Limits(max_member_bytes=4000))
    plain = tmp_path / "plain.edgepose"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("manifest.json", "{}")
    with pytest.raises(BundleError, match="not a sealed"):
        rb.Bundle.open(plain)
    tar = tmp_path / "x.edgepose"
    tar.write_bytes(b"not a zip at all" * 10)
    with pytest.raises(BundleError, match="not a bundle"):
        rb.Bundle.open(tar)
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    path = _sealed_zip(tmp_path / "pickle.edgepose", [("golden/inputs.npy", pickled.getvalue())])
    with pytest.raises(BundleError, match="not a plain .npy"):
        rb.Bundle.open(path).array("golden/inputs.npy")


def test_extract_writes_only_listed_members(bundle, tmp_path):
    written = rb.extract(bundle, tmp_path / "x")
    names = sorted(p.relative_to(tmp_path / "x").as_posix() for p in written)
    assert names == ["golden/inputs.npy", "golden/outputs.npy", "manifest.json", "model.onnx"]
    import hashlib

    members = json.loads((tmp_path / "x" / "manifest.json").read_text())["members"]
    for name in ("model.onnx", "golden/inputs.npy", "golden/outputs.npy"):
        data = (tmp_path / "x" / name).read_bytes()
        assert members[name] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}, name
        assert data == rb.Bundle.open(bundle).read(name)
    with pytest.raises(BundleError, match="not empty"):
        rb.extract(bundle, tmp_path / "x")


# -- verify and the command line -----------------------------------------------------------------

def test_verify_passes_and_fails(bundle, tmp_path):
    report = verify(bundle, threads=1, seconds=0.2)
    assert report.passed and report.verdict.startswith("PASS") and report.latency["p50_ms"] > 0
    bad = make_bundle(tmp_path / "drift.edgepose", outputs_shift=1e-2)
    report = verify(bad, threads=1, seconds=0.1)
    assert not report.passed and "golden" in report.verdict and report.verdict.startswith("FAIL")


def _runtime(*args, stdin: str | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgepose.runtime", *map(str, args)], input=stdin,
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_module_cli(bundle, pred, tmp_path):
    x = _windows(3)
    x[1, 0, 0] = np.nan
    np.save(tmp_path / "w.npy", x)
    r = _runtime("infer", bundle, "--input", tmp_path / "w.npy", "--output", tmp_path / "o.jsonl")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [row["status"] == "ok" for row in rows] == [True, False, True] and rows[1]["keypoints"] is None
    frames = np.random.default_rng(0).uniform(0, 1, (24, C))
    lines = [" ".join(f"{v:.5f}" for v in f) if i % 2 else json.dumps(f.tolist()) for i, f in enumerate(frames)]
    lines[21] = ""  # a lost frame
    r = _runtime("infer", bundle, "--input", "-", "--output", "-", "--hop", "2", stdin="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["frame"] for o in out] == [19, 21, 23] and all(o["status"] == "ok" for o in out)
    r = _runtime("infer", bundle, "--input", "-", stdin="1 2 3\n")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "stdin line 1" in r.stderr
    r = _runtime("verify", tmp_path / "missing.edgepose")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "missing.edgepose" in r.stderr
    tampered = tmp_path / "t.edgepose"
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    r = _runtime("verify", tampered, "--seconds", "0.1")
    assert r.returncode == 1 and "FAIL" in r.stdout and "seal" in r.stdout
    r = _runtime("verify", bundle, "--seconds", "0.1", "--threads", "1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["passed"]
    r = _runtime("inspect", bundle)
    assert r.returncode == 0 and json.loads(r.stdout)["format"] == "edgepose-bundle"
    r = _runtime("extract", bundle, tmp_path / "x")
    assert r.returncode == 0 and (tmp_path / "x" / "model.onnx").read_bytes() == rb.Bundle.open(bundle).read("model.onnx")
    np.save(tmp_path / "f.npy", frames.astype(np.float32))
    r = _runtime("infer", bundle, "--input", tmp_path / "f.npy", "--output", tmp_path / "f.out.npy", "--hop", "2")
    assert r.returncode == 0, r.stderr
    want = np.stack([p.keypoints for p in pred.stream(frames.astype(np.float32), hop=2)])
    assert want.shape == (3, J, 2)
    np.testing.assert_allclose(np.load(tmp_path / "f.out.npy"), want, atol=1e-6)
    r = _runtime("infer", bundle, "--input", tmp_path / "f.npy", "--output", tmp_path / "f.csv")
    assert r.returncode == 2 and "must end in .npy or .jsonl" in r.stderr


# -- SIGTERM as interrupt ------------------------------------------------------------------------

def test_terminate_as_interrupt_raises_and_restores():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt) as exc:
        with terminate_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs at the next bytecode boundary
                pass
    assert isinstance(exc.value, Terminated) and exc.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before
