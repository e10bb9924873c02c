"""Bench harness and report: rows, skipped backends, schema, merged report with plots."""

from __future__ import annotations

import json
import shutil

import pytest

from edgepose.bench import TimingPlan, bench, write_results
from edgepose.errors import EdgeposeError
from edgepose.export import ExportRequest, export
from edgepose.report import build_report
from edgepose.report.build import pareto

FAST = TimingPlan(warmup=1, iters=3, min_seconds=0.0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_run, tiny_data):
    out = tmp_path_factory.mktemp("bench")
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(tiny_run / f"best{suffix}", out / f"wiflow-tiny.fp32{suffix}")
    for kw in (dict(precision="fp32"), dict(precision="int8", calib="minmax")):
        export(ExportRequest(tiny_run, out, data=tiny_data, calib_count=64, parity_windows=16, log=lambda s: None, **kw))
    return out


def test_cpu_bench_rows_and_accuracy(folder, tiny_data, tmp_path):
    res = bench(folder, "cpu", (1, 4), 1, FAST, tiny_data, log=lambda s: None)
    assert res["schema"] == "edgepose-bench" and res["schema_version"] == 1
    assert {(r["kind"], r["backend"]) for r in res["rows"]} == {("torch", "torch-cpu"), ("onnx", "ort-cpu")}
    assert len(res["rows"]) == 3
    for r in res["rows"]:
        assert set(r["latency"]) == {"1", "4"}
        lat = r["latency"]["4"]
        assert 0 < lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"]
        assert r["accuracy"]["clean"]["n"] < r["accuracy"]["full"]["n"]
        assert r["bytes"] > 0 and r["size_mib"] < r["size_mb"]
    torch_row = next(r for r in res["rows"] if r["kind"] == "torch")
    fp32_onnx = next(r for r in res["rows"] if r["precision"] == "fp32" and r["kind"] == "onnx")
    # the same weights through two runtimes score the same
    assert fp32_onnx["accuracy"]["clean"]["pck"] == pytest.approx(torch_row["accuracy"]["clean"]["pck"], abs=1e-6)
    assert res["machine"]["cpu_count"] >= 1 and "avx2" in res["machine"]["cpu_flags"]
    j, c = write_results(res, tmp_path / "r.json")
    assert json.loads(j.read_text())["rows"] and len(c.read_text().splitlines()) == 1 + 3 * 2


def test_cuda_without_gpu_lists_skips_instead_of_failing(folder, tiny_data):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    res = bench(folder, "cuda", (1,), 1, FAST, tiny_data, log=lambda s: None)
    assert res["rows"] == []
    assert {s["backend"] for s in res["skipped"]} >= {"torch-cuda", "ort-cuda"}
    assert all(s["reason"] for s in res["skipped"])
    assert "no CUDA GPU" in res["note"]


def test_report_merges_results_and_embeds_plots(folder, tiny_data, tmp_path):
    a = bench(folder, "cpu", (1, 4), 1, FAST, tiny_data, log=lambda s: None)
    b = bench(folder, "cpu", (1, 4), 2, FAST, tiny_data, log=lambda s: None)
    pa, _ = write_results(a, tmp_path / "a.json")
    pb, _ = write_results(b, tmp_path / "b.json")
    md, page = build_report([pa, pb], tmp_path / "report")
    text = md.read_text()
    assert "## Verdict" in text and "ship **" in text
    assert text.count("| ") > 6 and "data:image/png;base64," in text
    assert page.read_text().count("<img") == 2


def test_report_rejects_other_json(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"hello": 1}')
    with pytest.raises(EdgeposeError, match="not an edgepose bench results file"):
        build_report([p], tmp_path / "r")


def test_pareto_front():
    # (latency, accuracy): b dominates a; c is slower but more accurate
    assert pareto([(2.0, 50.0), (1.0, 60.0), (3.0, 70.0)]) == [False, True, True]


def test_rounds_take_the_median_and_keep_each_round(folder, tiny_data):
    res = bench(folder, "cpu", (2,), 1, FAST, tiny_data, log=lambda s: None, isolate=False, rounds=3)
    assert res["rounds"] == 3
    for r in res["rows"]:
        lat = r["latency"]["2"]
        assert len(lat["rounds_p50_ms"]) == 3
        assert lat["p50_ms"] == pytest.approx(sorted(lat["rounds_p50_ms"])[1])
        assert "accuracy" in r
