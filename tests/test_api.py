"""The Python API: docs/api.md runs as written, lazy imports, typed results, doctor."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _doc_example() -> str:
    text = (ROOT / "docs" / "api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "docs/api.md must hold exactly one python block (the executed example)"
    return blocks[0]


def test_docs_api_example_runs_as_written(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(_doc_example())
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "report:" in proc.stdout
    page = Path(proc.stdout.strip().splitlines()[-1].split("report:", 1)[1].strip())
    page = page if page.is_absolute() else tmp_path / page
    assert page.is_file() and page.stat().st_size > 1000
    # two artifacts were scored and printed with a PCK figure
    printed = re.findall(r"^(\S+\.onnx): (fp32|int8), (\d+) kB, PCK@20 (\d+\.\d)%$", proc.stdout, flags=re.MULTILINE)
    assert len(printed) == 2 and {p[1] for p in printed} == {"fp32", "int8"}, proc.stdout
    # the bench results are those artifacts, as the example asked for them, and agree with what evaluate printed
    doc = json.loads((tmp_path / "work" / "bench.json").read_text())
    assert doc["schema"] == "edgepose-bench" and doc["batches"] == [1, 8] and doc["threads"] == 1
    assert doc["rounds"] == 2 and f"{len(doc['rows'])} rows on {doc['machine']['cpu_model']}" in proc.stdout
    rows = {r["artifact"]: r for r in doc["rows"]}
    assert set(rows) == {p[0] for p in printed}
    for name, precision, kb, pck20 in printed:
        r = rows[name]
        assert r["precision"] == precision and f"{r['bytes'] / 1e3:.0f}" == kb
        assert r["bytes"] == (tmp_path / "work" / "artifacts" / name).stat().st_size
        assert abs(100 * r["accuracy"]["clean"]["pck"]["0.2"] - float(pck20)) <= 0.05 + 1e-9, (name, pck20)
    # the report page shows every benched artifact
    html = page.read_text()
    assert all(r["label"] in html for r in doc["rows"])


def test_import_is_lazy():
    """Plain ``import edgepose`` loads nothing heavy (its time is a benchmark matter, not asserted here)."""
    code = ("import sys; import edgepose; "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'matplotlib', 'click') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out  # nothing heavy imported
    import edgepose

    assert set(edgepose.__all__) >= {"train", "evaluate", "export", "bench", "report", "run", "load_dataset",
                                     "Scores", "Artifact", "Checkpoint", "BenchResult", "doctor"}
    import inspect

    for name in edgepose.__all__:
        obj = getattr(edgepose, name)
        if name == "__version__":
            assert obj == edgepose.version.__version__
        elif name == "EdgeposeError":
            assert issubclass(obj, Exception)
        elif name[0].isupper():  # typed results
            assert inspect.isclass(obj) and obj.__module__ == "edgepose.results", name
        else:  # verbs: the API's functions, never a module of the same name
            assert inspect.isfunction(obj) and obj.__module__ == "edgepose.api", name
    with pytest.raises(AttributeError):
        edgepose.no_such_name  # noqa: B018
    assert (ROOT / "edgepose" / "py.typed").is_file()


def test_scores_from_results_round_trip():
    from edgepose.api import Scores

    m = {"pck": {"0.1": 0.1, "0.2": 0.5, "0.3": 0.6, "0.4": 0.7, "0.5": 0.8}, "mpjpe": 0.04, "n": 12}
    s = Scores.from_results({"test": {"clean": m, "full": m, "mean_pose": {**m, "pck": {k: 0.0 for k in m["pck"]}},
                                      "corrupt_windows": 3}})
    assert s.pck20 == 0.5 and s.windows == 12 and s.corrupt_windows == 3 and s.mean_pose_pck[0.2] == 0.0
    assert "PCK@20 50.00%" in str(s)


def test_export_rejects_unknown_options(tiny_run, tmp_path):
    import edgepose as ep

    with pytest.raises(ep.EdgeposeError, match="unknown export option"):
        ep.export(tiny_run / "best.safetensors", precision="int8", out=tmp_path, calibrator="entropy")
    assert not any(tmp_path.iterdir())


def _tensorrt_here() -> tuple[bool, bool]:
    """(installed, importable) for this box, decided without edgepose's own probe."""
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        return False, False
    try:
        import tensorrt  # noqa: F401
    except Exception:  # noqa: BLE001 — a wheel whose CUDA libraries do not load
        return True, False
    return True, True


def test_doctor_json_schema_and_missing_extras_are_reported():
    import torch

    proc = subprocess.run([sys.executable, "-m", "edgepose", "doctor", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["schema"] == "edgepose-doctor" and rep["schema_version"] == 1
    for key in ("versions", "cpu", "onnxruntime_providers", "gpu", "optional", "capabilities"):
        assert key in rep
    import onnxruntime

    assert rep["versions"]["onnxruntime"] == onnxruntime.__version__
    assert rep["onnxruntime_providers"] == onnxruntime.get_available_providers()
    assert "CPUExecutionProvider" in rep["onnxruntime_providers"]
    assert isinstance(rep["cpu"]["cpu_flags"], dict) and rep["cpu"]["int8"]["isa"]
    # TensorRT: the report agrees with what this box has, whichever kind of box it is
    installed, importable = _tensorrt_here()
    gpu = torch.cuda.is_available()
    assert rep["gpu"]["available"] is gpu
    trt = rep["optional"]["tensorrt"]
    assert trt["installed"] is installed
    if not installed:  # reported with a reason and the install line
        assert trt["reason"] == "not installed" and "pip install 'edgepose[trt]'" == trt["install"]
    engine = rep["capabilities"]["export"]["--engine (TensorRT .plan)"]
    assert engine["runs"] is (importable and gpu)
    if not engine["runs"]:
        assert engine["reason"]
    if not gpu:
        assert rep["gpu"]["reason"]
        assert rep["capabilities"]["bench_backends"]["torch-cuda"]["runs"] is False


PROBE_SAYS_MISSING = "TensorRT is not installed (test probe)"


@pytest.mark.parametrize("gpu", [True, False], ids=["gpu", "no-gpu"])
@pytest.mark.parametrize("trt", ["present", "missing", "broken"])
def test_doctor_follows_the_tensorrt_probe(monkeypatch, trt, gpu):
    """The TensorRT probe and the GPU patched both ways: what doctor reports and what it says runs.

    ``broken``: the distribution is installed but ``import tensorrt`` fails (CUDA libraries missing).
    """
    import importlib
    import importlib.metadata as md

    import edgepose.exporting.tensorrt as trt_mod

    doctor = importlib.import_module("edgepose.diagnostics")
    probe = (True, "") if trt == "present" else (False, PROBE_SAYS_MISSING + (" (broken)" if trt == "broken" else ""))
    monkeypatch.setattr(trt_mod, "tensorrt_available", lambda: probe)
    real = md.version

    def version(dist):
        if dist == "tensorrt":
            if trt == "missing":
                raise md.PackageNotFoundError(dist)
            return "10.9.0"
        return real(dist)

    monkeypatch.setattr(doctor.md, "version", version)
    fake_gpu = ({"available": True, "name": "Test GPU", "memory_gib": 80.0, "capability": "9.0", "count": 1}
                if gpu else {"available": False, "reason": "no GPU (test)"})
    monkeypatch.setattr(doctor, "_gpu", lambda: dict(fake_gpu))
    rep = doctor.collect()
    entry = rep["optional"]["tensorrt"]
    engine = rep["capabilities"]["export"]["--engine (TensorRT .plan)"]
    backend = rep["capabilities"]["bench_backends"]["tensorrt"]
    text = doctor.format_text(rep)
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("tensorrt "))
    engine_line = next(ln for ln in text.splitlines() if "--engine (TensorRT .plan)" in ln)
    if trt == "missing":
        assert entry == {"installed": False, "version": None, "for": doctor.OPTIONAL["tensorrt"][0],
                         "reason": "not installed", "install": "pip install 'edgepose[trt]'"}
        assert "missing — not installed; pip install 'edgepose[trt]'" in line
    elif trt == "broken":
        assert entry["installed"] is True and entry["version"] == "10.9.0" and entry["reason"] == probe[1]
        assert "install" not in entry and "10.9.0" in line
    else:
        assert entry["installed"] is True and entry["version"] == "10.9.0"
        assert "reason" not in entry and "install" not in entry and "10.9.0" in line and "missing" not in line
    # the engine builds only where TensorRT imports and a GPU is visible; otherwise the reason is the right one
    assert engine["runs"] is (trt == "present" and gpu)
    if trt != "present":
        assert engine["reason"] == probe[1] and backend == {"device": "cuda", "runs": False, "reason": probe[1]}
        assert engine_line.strip() == f"✗ --engine (TensorRT .plan) — {probe[1]}"
    elif not gpu:
        assert engine["reason"] == "TensorRT is installed but no CUDA GPU is visible"
        assert engine_line.strip().startswith("✗")
    else:
        assert "reason" not in engine and engine_line.strip() == "✓ --engine (TensorRT .plan)"
    # the other exports never depend on TensorRT
    assert all(c["runs"] for what, c in rep["capabilities"]["export"].items() if "engine" not in what)


def test_doctor_reports_a_missing_extra_without_raising(monkeypatch):
    import importlib.metadata as md

    import importlib

    doctor = importlib.import_module("edgepose.diagnostics")

    real = md.version

    def fake(dist):
        if dist == "hypothesis":
            raise md.PackageNotFoundError(dist)
        return real(dist)

    monkeypatch.setattr(doctor.md, "version", fake)
    rep = doctor.collect()
    assert rep["optional"]["hypothesis"]["installed"] is False
    assert rep["optional"]["hypothesis"]["install"] == "pip install -e '.[dev]'"
    assert "hypothesis" in doctor.format_text(rep)
