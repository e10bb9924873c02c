"""``edgepose run`` end to end on tiny data, in both layouts; export from any working directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edgepose.benchmarking import TimingPlan
from edgepose.errors import EdgeposeError
from edgepose.pipeline import run

QUICK = TimingPlan(warmup=1, iters=2, min_seconds=0.0)
EXPORTS = (("fp32", None, "percentile", "safe"), ("int8", "ptq", "entropy", "safe"))


def _check_run(res, joints: int) -> None:
    assert res.trained and res.checkpoint.is_file()
    assert len(res.artifacts) == 2 and all(p.is_file() for p in res.artifacts)
    doc = json.loads(res.results.read_text())
    labels = {r["artifact"] for r in doc["rows"]}
    assert {p.name for p in res.artifacts} <= labels
    for r in doc["rows"]:
        assert "accuracy" in r
    assert res.report.is_file() and (res.report.parent / "report.md").is_file()
    card = json.loads(res.artifacts[1].with_name(res.artifacts[1].name + ".json").read_text())
    assert card["joints"] == joints and card["calibration"]["windows"] >= 1


def test_run_end_to_end_on_a_tiny_wiflow_set(tmp_path, tiny_data):
    res = run(tmp_path / "run", data=tiny_data, model="wiflow-tiny", epochs=1, exports=EXPORTS, rounds=1,
              batches=(1, 2), timing=QUICK, isolate=False, threads=1, log=lambda s: None)
    _check_run(res, 15)


def test_run_end_to_end_on_the_mmfi_layout(tmp_path):
    from dataclasses import replace

    from edgepose.data.synth import default_config, synthesize

    data = tmp_path / "mmfi"
    synthesize(data, replace(default_config("mmfi"), subjects=2, duration_s=1.5), layout="mmfi")
    res = run(tmp_path / "run", data=data, model="wiflow-tiny", epochs=1, exports=EXPORTS, rounds=1,
              batches=(1, 2), timing=QUICK, isolate=False, threads=1, log=lambda s: None)
    _check_run(res, 17)


def test_export_from_another_working_directory(tmp_path, tiny_run, tiny_data, monkeypatch):
    """The card stores the dataset's absolute path: export works from any cwd without --data."""
    from edgepose.api import export

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (art,) = export(tiny_run / "best.safetensors", precision="fp32", out="arts")
    assert art.path.is_file() and art.path.resolve().parent == (elsewhere / "arts").resolve()
    assert Path(art.card["parent"]["checkpoint"]).is_absolute()


def test_missing_dataset_names_its_fingerprint(tmp_path, tiny_run, tiny_data):
    """When the recorded dataset is gone: one clear error naming the fingerprint and --data."""
    from edgepose.api import export, load_checkpoint

    ckpt_dir = tmp_path / "ckpt"
    shutil.copytree(tiny_run, ckpt_dir)
    card_path = ckpt_dir / "best.json"
    card = json.loads(card_path.read_text())
    card["dataset"]["path"] = str(tmp_path / "moved-away")
    card["dataset"].pop("synth", None)
    card_path.write_text(json.dumps(card))
    fp = load_checkpoint(ckpt_dir / "best.safetensors").card["dataset"]["fingerprint"]
    with pytest.raises(EdgeposeError, match="pass --data") as err:
        export(ckpt_dir / "best.safetensors", precision="fp32", out=tmp_path / "o")
    assert fp[:12] in str(err.value)
    assert not any((tmp_path / "o").glob("*.onnx"))
    # with --data it works
    (art,) = export(ckpt_dir / "best.safetensors", precision="fp32", out=tmp_path / "o", data=tiny_data)
    assert art.path.is_file()
