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
    assert (tmp_path / "work" / "bench.json").is_file()
    # two artifacts were scored and printed with a PCK figure
    assert len(re.findall(r"\.onnx: (fp32|int8), \d+ kB, PCK@20 \d+\.\d%", proc.stdout)) == 2, proc.stdout


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


def test_doctor_json_schema_and_missing_extras_are_reported():
    proc = subprocess.run([sys.executable, "-m", "edgepose", "doctor", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["schema"] == "edgepose-doctor" and rep["schema_version"] == 1
    for key in ("versions", "cpu", "onnxruntime_providers", "gpu", "optional", "capabilities"):
        assert key in rep
    assert rep["versions"]["onnxruntime"] and "CPUExecutionProvider" in rep["onnxruntime_providers"]
    assert isinstance(rep["cpu"]["cpu_flags"], dict) and rep["cpu"]["int8"]["isa"]
    # TensorRT is never installed on the CI machine: reported with a reason and the install line
    trt = rep["optional"]["tensorrt"]
    assert trt["installed"] is False and "edgepose[trt]" in trt["install"]
    engine = rep["capabilities"]["export"]["--engine (TensorRT .plan)"]
    assert engine["runs"] is False and engine["reason"]
    if not rep["gpu"]["available"]:
        assert rep["gpu"]["reason"]
        assert rep["capabilities"]["bench_backends"]["torch-cuda"]["runs"] is False


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
