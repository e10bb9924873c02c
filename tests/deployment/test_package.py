"""``edgepose package`` end to end: manifest contents, round trip, CLI, interruption, and the
runtime in a fresh virtual environment that has only numpy and onnxruntime."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgepose.cli.main import cli
from edgepose.deployment import package, write_runtime_pyz
from edgepose.errors import EdgeposeError
from edgepose.exporting import ExportRequest, export
from edgepose.runtime import bundle as rb
from edgepose.runtime.predictor import Predictor
from edgepose.skeleton import BODY25_15

REPO = Path(__file__).resolve().parents[2]
QUIET = dict(log=lambda s: None)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, tiny_run, tiny_data):
    out = tmp_path_factory.mktemp("deploy-art")
    (fp32,) = export(ExportRequest(checkpoint=tiny_run, out=out, data=tiny_data, precision="fp32",
                                   parity_windows=32, **QUIET))
    (int8,) = export(ExportRequest(checkpoint=tiny_run, out=out, data=tiny_data, precision="int8", recipe="safe", calib="minmax",
                                   calib_count=64, parity_windows=32, **QUIET))
    return {"fp32": fp32, "int8": int8}


def _bench_doc(path: Path, artifact: Path) -> Path:
    row = {"artifact": artifact.name, "label": "fp32", "backend": "ort-cpu", "size_mb": 0.3,
           "latency": {"1": {"p50_ms": 0.4, "p99_ms": 0.9}}, "accuracy": {"clean": {"pck": {"0.2": 0.5}}}}
    other = {**row, "artifact": "other.onnx"}
    path.write_text(json.dumps({"schema": "edgepose-bench", "schema_version": 1, "threads": 2, "device": "cpu",
                                "machine": {"cpu_model": "Test CPU", "arch": "x86_64"}, "rows": [other, row]}))
    return path


@pytest.fixture(scope="module")
def bundles(artifacts, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles")
    bench = _bench_doc(out / "results.json", artifacts["fp32"])
    return {"fp32": package(artifacts["fp32"], out / "fp32.edgepose", bench=bench, golden=6, latency_seconds=0.2, **QUIET),
            "int8": package(artifacts["int8"], out / "int8.edgepose", ort_format=True, latency_seconds=0.2, **QUIET)}


def test_manifest_describes_the_contract(bundles, artifacts, tiny_run):
    b = rb.Bundle.open(bundles["int8"])
    m = b.manifest
    from edgepose.version import __version__

    assert m["format"] == "edgepose-bundle" and m["schema_version"] == 1 and m["edgepose_version"] == __version__
    assert set(m["members"]) == {"model.onnx", "model.ort", "model.required_operators.config",
                                 "golden/inputs.npy", "golden/outputs.npy", "artifact.card.json"}
    assert b.read("model.onnx") == artifacts["int8"].read_bytes()
    model = m["model"]
    assert model["precision"] == "int8" and model["method"] == "ptq" and model["calibrator"] == "minmax"
    art_card = json.loads(artifacts["int8"].with_name(artifacts["int8"].name + ".json").read_text())
    assert model["calibration"]["fingerprint"] == art_card["calibration"]["fingerprint"]
    assert model["recipe"]["per_channel"]
    assert json.loads(b.read("artifact.card.json")) == art_card
    window = m["input"]["window"]
    assert (window["values_per_frame"], window["frames"]) == (540, 20)
    assert window["channel_order"] == "rx-tx-rxant-subcarrier" and window["frame_rate_hz"] == 100.0
    assert "1/64" in window["preprocessing"] and m["input"]["corruption_rule"]["max_abs"] == 1.5
    out = m["output"]
    assert out["joints"] == list(BODY25_15.joints) and out["torso"] == [2, 12] and out["units"] == "pixel/1000"
    assert [tuple(e) for e in out["skeleton"]] == list(BODY25_15.bones)
    parent = m["parent"]
    card = json.loads((tiny_run / "best.json").read_text())
    assert parent["dataset_fingerprint"] == card["dataset"]["fingerprint"]
    assert parent["split_fingerprint"] == card["split"]["fingerprint"]
    assert parent["test_clean_pck20"] == card["metrics"]["test"]["clean"]["pck"]["0.2"]
    g = m["golden"]
    x, y = b.array(g["inputs"]), b.array(g["outputs"])
    assert x.shape == (8, 540, 20) and y.shape == (8, 15, 2) and x.dtype == np.float32
    tol, par = g["tolerance"], art_card["parity"]["vs_fp32_torch"]
    # int8: derived from the export's own parity (a share of its quantization error), not the fixed floor
    assert tol["parity_vs_fp32_torch"]["mean_abs_error"] == par["mean_abs_error"] and m["bench"] is None
    assert tol["max_abs"] >= max(0.25 * par["max_abs_error"], 1.5 * tol["measured_optimised_vs_reference"])
    assert tol["mean_abs"] >= 0.25 * par["mean_abs_error"] and tol["max_abs"] <= 0.3 * par["max_abs_error"] + 2 * tol[
        "measured_optimised_vs_reference"]
    assert m["build"]["latency"]["p50_ms"] > 0 and m["build"]["cpu"]["cpu_flags"]
    config = b.read("model.required_operators.config").decode()
    assert "Conv" in config and "/" not in config.replace("ai.onnx", "")  # no build-machine paths
    f = rb.Bundle.open(bundles["fp32"]).manifest
    assert f["golden"]["tolerance"]["max_abs"] >= 1e-3 and f["golden"]["count"] == 6
    assert f["bench"]["figures"] == {"backend": "ort-cpu", "size_mb": 0.3, "p50_ms": 0.4, "p99_ms": 0.9, "pck20": 0.5}
    assert f["bench"]["machine"]["cpu_model"] == "Test CPU" and f["model"]["ort_file"] is None


def test_bundled_models_reproduce_the_golden_outputs(bundles, artifacts, tiny_run):
    import torch

    from edgepose.runtime.session import ort_predict, ort_session
    from edgepose.training import load_checkpoint

    for key, path in bundles.items():
        pred = Predictor.load(path, threads=1)
        g = pred.manifest["golden"]
        x, want = pred.bundle.array(g["inputs"]), pred.bundle.array(g["outputs"])
        out = pred.predict(x)
        assert out.ok.all()
        assert np.abs(out.values - want).max() <= g["tolerance"]["max_abs"]
        # the golden outputs are the artifact's own outputs on the golden inputs, computed here from the file
        np.testing.assert_allclose(want, ort_predict(ort_session(artifacts[key], threads=1), x), atol=1e-5)
    # and the fp32 bundle's are the checkpoint's (a bundle of other weights would carry other outputs)
    model, _ = load_checkpoint(tiny_run / "best.safetensors")
    golden = rb.Bundle.open(bundles["fp32"])
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(golden.array("golden/inputs.npy"))).numpy()
    np.testing.assert_allclose(golden.array("golden/outputs.npy"), ref, atol=1e-4)
    ort = Predictor.load(bundles["int8"], ort_format=True, threads=1)
    assert ort.model_member == "model.ort" and ort.predict(ort.bundle.array("golden/inputs.npy")).ok.all()


def test_package_refuses_bad_input(artifacts, tmp_path):
    with pytest.raises(EdgeposeError, match="must end in .edgepose"):
        package(artifacts["fp32"], tmp_path / "x.zip", **QUIET)
    with pytest.raises(EdgeposeError, match="not found"):
        package(tmp_path / "missing.onnx", tmp_path / "x.edgepose", **QUIET)
    copy = tmp_path / artifacts["fp32"].name
    data = bytearray(artifacts["fp32"].read_bytes())
    data[-10] ^= 1
    copy.write_bytes(bytes(data))
    with pytest.raises(EdgeposeError, match="no card"):
        package(copy, tmp_path / "x.edgepose", **QUIET)
    card = artifacts["fp32"].with_name(artifacts["fp32"].name + ".json")
    (tmp_path / card.name).write_text(card.read_text())
    with pytest.raises(EdgeposeError, match="does not match its card"):
        package(copy, tmp_path / "x.edgepose", **QUIET)
    with pytest.raises(EdgeposeError, match="not an edgepose bench"):
        package(artifacts["fp32"], tmp_path / "x.edgepose", bench=card, **QUIET)
    assert not list(tmp_path.glob("*.edgepose")) and not list(tmp_path.glob(".*"))


def test_cli_package_infer_verify(artifacts, bundles, tmp_path):
    runner = CliRunner()
    for name in ("package", "infer", "verify"):
        res = runner.invoke(cli, [name, "--help"])
        assert res.exit_code == 0 and "Examples:" in res.output
    out = tmp_path / "cli.edgepose"
    pyz = tmp_path / "edgepose-runtime.pyz"
    res = runner.invoke(cli, ["package", str(artifacts["fp32"]), "--out", str(out), "--golden", "2",
                              "--runtime-pyz", str(pyz)])
    assert res.exit_code == 0, res.output
    assert rb.file_sha256(out) in res.output
    with zipfile.ZipFile(pyz) as zf:
        names = set(zf.namelist())
    assert {"__main__.py", "edgepose/__init__.py", "edgepose/errors.py", "edgepose/runtime/predictor.py"} <= names
    assert not any("torch" in n or n.startswith("edgepose/train") for n in names)
    x = rb.Bundle.open(out).array("golden/inputs.npy")
    np.save(tmp_path / "w.npy", x)
    res = runner.invoke(cli, ["infer", str(out), "--input", str(tmp_path / "w.npy"), "--output", str(tmp_path / "p.npy")])
    assert res.exit_code == 0, res.output
    assert np.load(tmp_path / "p.npy").shape == (2, 15, 2)
    res = runner.invoke(cli, ["verify", str(out), "--seconds", "0.1", "--threads", "1"])
    assert res.exit_code == 0 and "PASS" in res.output
    bad = tmp_path / "bad.edgepose"
    data = bytearray(out.read_bytes())
    data[100] ^= 1
    bad.write_bytes(bytes(data))
    res = runner.invoke(cli, ["verify", str(bad), "--seconds", "0.1"])
    assert res.exit_code == 1 and "FAIL" in res.output
    res = runner.invoke(cli, ["package", str(tmp_path / "nope.onnx"), "--out", str(tmp_path / "n.edgepose")])
    assert res.exit_code == 2 and "nope.onnx" in res.output and "not found" in res.output


_KILL_SCRIPT = textwrap.dedent("""
    import signal, sys, time
    from pathlib import Path
    # a shell's background job inherits SIGINT ignored, and Python then never raises KeyboardInterrupt:
    # give this process Ctrl-C's usual meaning whatever started the test run
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from edgepose.deployment import package
    from edgepose.runtime import bundle as rb

    artifact, out, where = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    real_write = rb.write_bundle

    def slow_write(path, manifest, members):
        real_write(path, manifest, members)
        print("WRITING", flush=True)
        time.sleep(60)

    def log(msg):
        if where == "golden" and "golden windows" in msg:
            print("GOLDEN", flush=True)
            time.sleep(60)

    rb.write_bundle = slow_write
    package(artifact, out, latency_seconds=0.1, log=log)
""")


@pytest.mark.parametrize("sig, where", [(signal.SIGTERM, "write"), (signal.SIGINT, "golden")])
def test_interrupted_package_leaves_nothing(artifacts, tmp_path, sig, where):
    out = tmp_path / "out" / "killed.edgepose"
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(artifacts["fp32"]), str(out), where],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        line = proc.stdout.readline()
        assert line.strip() in ("WRITING", "GOLDEN"), proc.stderr.read()
        leftovers = list(out.parent.iterdir())
        assert leftovers  # part-way: the work folder (and, when writing, the temporary bundle) exist
        proc.send_signal(sig)
        proc.wait(timeout=180)  # > the script's 60-s sleeps: a slow, shared box once needed more than 60 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert list(out.parent.iterdir()) == [], list(out.parent.iterdir())


# -- the real thing: a fresh venv with only numpy + onnxruntime ----------------------------------

@pytest.fixture(scope="session")
def runtime_venv(tmp_path_factory):
    """A virtual environment without system site-packages holding numpy and onnxruntime only
    (the versions of this environment, so pip's cache serves them)."""
    import onnxruntime

    venv = tmp_path_factory.mktemp("venv") / "box"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    pip = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                          f"numpy=={np.__version__}", f"onnxruntime=={onnxruntime.__version__}"],
                         capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    return py


def test_runtime_in_a_fresh_venv(runtime_venv, bundles, tmp_path):
    py = runtime_venv
    pyz = write_runtime_pyz(tmp_path / "edgepose-runtime.pyz")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    box = tmp_path / "box"  # the box: nothing but the bundle, the pyz and the venv
    box.mkdir()

    def run(*args, stdin=None):
        return subprocess.run([str(py), str(pyz), *map(str, args)], input=stdin, capture_output=True, text=True,
                              cwd=box, env=env, timeout=300)

    probe = subprocess.run([str(py), "-c", "import importlib.util as u; print([m for m in ('torch', 'onnx', "
                            "'click', 'scipy', 'matplotlib', 'edgepose') if u.find_spec(m)])"],
                           capture_output=True, text=True, cwd=box, env=env)
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr
    for key in ("int8", "fp32"):
        r = run("verify", bundles[key], "--seconds", "0.3")
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.strip().splitlines()[-1].startswith("PASS")
    b = rb.Bundle.open(bundles["int8"])
    x = b.array("golden/inputs.npy").copy()
    x[3, 0, 0] = np.nan
    np.save(box / "windows.npy", x)
    r = run("infer", bundles["int8"], "--input", box / "windows.npy", "--output", box / "poses.jsonl")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (box / "poses.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and rows[3]["keypoints"] is None and rows[3]["status"].startswith("corrupt")
    got = np.array([rows[i]["keypoints"] for i in (0, 1, 2)], dtype=np.float32)
    tol = b.manifest["golden"]["tolerance"]["max_abs"]
    assert np.abs(got - b.array("golden/outputs.npy")[:3]).max() <= tol
    frames = np.concatenate([w.T for w in b.array("golden/inputs.npy")[:2]])  # 40 frames
    stdin = "\n".join(json.dumps(f.tolist()) for f in frames) + "\n"
    r = run("infer", bundles["int8"], "--input", "-", "--output", "-", "--hop", "10", "--ort", stdin=stdin)
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["frame"] for o in out] == [19, 29, 39] and all(o["status"] == "ok" for o in out)
    tampered = box / "tampered.edgepose"
    data = bytearray(bundles["int8"].read_bytes())
    data[len(data) // 3] ^= 0x20
    tampered.write_bytes(bytes(data))
    r = run("verify", tampered, "--seconds", "0.1")
    assert r.returncode == 1 and "seal" in r.stdout
    r = run("infer", tampered, "--input", box / "windows.npy", "--output", "-")
    assert r.returncode == 2 and r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
