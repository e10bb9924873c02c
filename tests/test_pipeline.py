"""``edgepose run`` end to end on tiny data, in both layouts; export from any working directory."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from edgepose.benchmarking import TimingPlan
from edgepose.errors import EdgeposeError
from edgepose.pipeline import run

QUICK = TimingPlan(warmup=1, iters=2, min_seconds=0.0)
EXPORTS = (("fp32", None, "percentile", "safe"), ("int8", "ptq", "entropy", "safe"))


BATCHES = (1, 2)


def _table(text: str, section: str) -> list[list[str]]:
    """The body rows of the first Markdown table under ``## section``, as lists of cells."""
    part = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in part.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]


def _check_run(res, joints: int) -> None:
    from edgepose.data import open_dataset

    assert res.trained and res.checkpoint.is_file()
    art = res.out / "artifacts"
    assert len(res.artifacts) == len(EXPORTS) and all(p.parent == art for p in res.artifacts)
    doc = json.loads(res.results.read_text())
    rows = doc["rows"]
    # the bench rows are the files on disk: every exported artifact and the checkpoint copy, nothing else,
    # each once per backend that runs it, with its size on disk
    on_disk = {p.name: p.stat().st_size for p in art.iterdir() if p.suffix in (".onnx", ".safetensors")}
    assert set(on_disk) == {p.name for p in res.artifacts} | {"wiflow-tiny.fp32.safetensors"}
    assert sorted(r["artifact"] for r in rows) == sorted(on_disk)
    assert {(r["kind"], r["backend"]) for r in rows} == {("torch", "torch-cpu"), ("onnx", "ort-cpu")}
    for r in rows:
        assert r["bytes"] == on_disk[r["artifact"]], r["artifact"]
        assert set(r["latency"]) == {str(b) for b in BATCHES}
    # every precision the run was asked for, exactly once
    onnx_rows = [r for r in rows if r["kind"] == "onnx"]
    assert len(onnx_rows) == len(EXPORTS)
    for precision, method, calib, recipe in EXPORTS:
        match = [r for r in onnx_rows if r["precision"] == precision
                 and (precision != "int8" or (r["method"], r["recipe"]["calibrator"], r["recipe"]["recipe"])
                      == (method, calib, recipe))]
        assert len(match) == 1, (precision, method, calib, recipe)
    # accuracy on exactly the dataset's clean test split, counted here independently
    ds = open_dataset(res.data)
    n_test = len(ds.indices("test", clean=True))
    assert n_test > 0
    for r in rows:
        assert r["accuracy"]["clean"]["n"] == n_test, r["artifact"]
    # the report names what was benched: its speed table is the bench rows, with their sizes
    md = res.report.parent / "report.md"
    assert res.report.is_file() and md.is_file()
    text = md.read_text()
    benched = {(r["label"], r["backend"]): r for r in rows}
    table = _table(text, "Speed (paired rounds)")
    assert sorted((c[1], c[2]) for c in table) == sorted(benched)
    for c in table:
        assert c[3] == f"{benched[(c[1], c[2])]['size_mb']:.2f}"
    # one verdict per batch size, each shipping a benched artifact (a tie still names the one it ships)
    verdict = text.split("## Verdict\n", 1)[1].split("Rule:", 1)[0]
    lines = [ln for ln in verdict.splitlines() if ln.startswith("- ")]
    assert len(lines) == len(BATCHES)
    for b, line in zip(BATCHES, lines):
        m = re.search(r"at batch (\d+): ship \*\*(.+?)\*\* on (\S+) — ", line)
        assert m, line
        assert int(m.group(1)) == b and (m.group(2), m.group(3)) in benched, line
        assert re.search(r"a clear speed win at|clearly faster than every other candidate|the only candidate within|"
                         r"speed undecided, a tie: .+ and .+ overlap|undecided: too few rounds — .+ between .+ and ",
                         line), line
    card = json.loads(res.artifacts[1].with_name(res.artifacts[1].name + ".json").read_text())
    assert card["joints"] == joints and card["calibration"]["windows"] >= 1


def test_run_end_to_end_on_a_tiny_wiflow_set(tmp_path, tiny_data, shipped_range_search):
    res = run(tmp_path / "run", data=tiny_data, model="wiflow-tiny", epochs=1, exports=EXPORTS, rounds=1,
              batches=BATCHES, timing=QUICK, isolate=False, threads=1, log=lambda s: None)
    _check_run(res, 15)
    # the main job exports a module recipe as ep.export does by default: its ranges searched
    card = json.loads(res.artifacts[1].with_name(res.artifacts[1].name + ".json").read_text())
    assert card["recipe"]["range_search"]["mode"] == "on" and card["recipe"]["range_search"]["tensors"] > 0
    # the default time budget applies: rounds were added until decided or capped, never fewer than asked
    doc = json.loads(res.results.read_text())
    assert doc["stopped"] in ("decided", "round cap", "budget") and doc["rounds"] >= 1
    assert len(doc["rounds_detail"]) == doc["rounds"]


def test_run_end_to_end_on_the_mmfi_layout(tmp_path):
    from dataclasses import replace

    from edgepose.data.synth import default_config, synthesize

    data = tmp_path / "mmfi"
    synthesize(data, replace(default_config("mmfi"), subjects=2, duration_s=1.5), layout="mmfi")
    res = run(tmp_path / "run", data=data, model="wiflow-tiny", epochs=1, exports=EXPORTS, rounds=1,
              batches=BATCHES, timing=QUICK, isolate=False, threads=1, log=lambda s: None, time_budget=None)
    _check_run(res, 17)
    assert json.loads(res.results.read_text())["stopped"] in ("fixed rounds", "decided")


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


def test_the_main_job_exports_the_default_int8_plan_timed_as_the_bench_runs(tmp_path, tiny_data, monkeypatch):
    """The default EXPORTS reach ``export`` as requests: the default int8 (``auto``, a latency plan) timed at the
    bench's threads and batch sizes, QAT on its per-epoch window budget (the export itself is stubbed: the other
    tests run real ones)."""
    import edgepose.exporting as exporting
    import edgepose.pipeline as pipeline
    from edgepose.quantization.recipes import get_recipe

    seen = []

    class Stop(Exception):
        pass

    def fake_export(req):
        seen.append(req)
        if len(seen) == len(pipeline.EXPORTS):
            raise Stop
        return []

    monkeypatch.setattr(exporting, "export", fake_export)
    stale = tmp_path / "run" / "artifacts" / "wiflow-tiny.int8-plan-latency-ort-cpu.onnx"  # an earlier run's
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    with pytest.raises(Stop):
        run(tmp_path / "run", data=tiny_data, model="wiflow-tiny", epochs=1, batches=(1, 3), threads=1,
            isolate=False, log=lambda s: None, parallel="intra")
    assert not stale.exists()  # the bench would have timed it beside this run's artifacts
    by = {(r.precision, r.method, r.recipe, r.objective): r for r in seen}
    assert ("int8", "ptq", "auto", None) in by and get_recipe("auto").plan == "latency"
    assert not any(r.objective for r in seen)  # the plan is the default int8, not a second export
    qat = by[("int8", "qat", "safe", None)]
    assert qat.qat_max_windows == pipeline.RUN_QAT_WINDOWS and by[("int8", "ptq", "safe", None)].qat_max_windows is None
    assert ("fp16", None, "safe", None) in by
    for r in seen:
        assert r.threads == 1 and r.batches == (1, 3) and r.parallel == "intra"  # not the default, batch
