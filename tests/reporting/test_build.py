"""Bench harness and report: rows, paired rounds, probe, CI, compute figures, skipped backends, report files."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from edgepose.benchmarking import ProbeSpec, TimingPlan, bench, write_results
from edgepose.errors import EdgeposeError
from edgepose.exporting import ExportRequest, export
from edgepose.metrics import pck_at
from edgepose.reporting import build_report
from edgepose.reporting.build import pareto
from edgepose.runtime.cpu import cpu_flags, speed_flags

FAST = TimingPlan(warmup=1, iters=3, min_seconds=0.0)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_run, tiny_data):
    out = tmp_path_factory.mktemp("bench")
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(tiny_run / f"best{suffix}", out / f"wiflow-tiny.fp32{suffix}")
    for kw in (dict(precision="fp32"), dict(precision="int8", recipe="safe")):  # int8 always (auto may ship fp32)
        export(ExportRequest(tiny_run, out, data=tiny_data, calib_count=64, parity_windows=16, log=lambda s: None, **kw))
    return out


@pytest.fixture(scope="module")
def results(folder, tiny_data):
    """Two in-process paired rounds at batch 1 and 4."""
    return bench(folder, "cpu", (1, 4), 1, FAST, tiny_data, log=lambda s: None, isolate=False, rounds=2)


def test_cpu_bench_rows_and_accuracy(results, folder, tmp_path):
    res = results
    assert res["schema"] == "edgepose-bench" and res["schema_version"] == 2
    assert {(r["kind"], r["backend"]) for r in res["rows"]} == {("torch", "torch-cpu"), ("onnx", "ort-cpu")}
    assert len(res["rows"]) == 3
    for r in res["rows"]:
        assert set(r["latency"]) == {"1", "4"}
        lat = r["latency"]["4"]
        assert 0 < lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"]
        assert len(lat["rounds_p50_ms"]) == 2
        assert r["accuracy"]["clean"]["n"] < r["accuracy"]["full"]["n"]
        on_disk = (folder / r["artifact"]).stat().st_size
        assert r["bytes"] == on_disk and r["size_mb"] == on_disk / 1e6 and r["size_mib"] == on_disk / 2**20
    torch_row = next(r for r in res["rows"] if r["kind"] == "torch")
    fp32_onnx = next(r for r in res["rows"] if r["precision"] == "fp32" and r["kind"] == "onnx")
    # the same weights through two runtimes score the same
    assert fp32_onnx["accuracy"]["clean"]["pck"] == pytest.approx(torch_row["accuracy"]["clean"]["pck"], abs=1e-6)
    # the machine facts are this machine's, flag by flag
    assert res["machine"]["cpu_flags"] == speed_flags()
    assert res["machine"]["cpu_flags"]["avx2"] == ("avx2" in cpu_flags())
    j, c = write_results(res, tmp_path / "r.json")
    written = json.loads(j.read_text())["rows"]  # every row, as measured (compared as JSON text: NaN == NaN there)
    assert json.dumps(written, sort_keys=True) == json.dumps(res["rows"], sort_keys=True)
    assert len(c.read_text().splitlines()) == 1 + 3 * 2


def test_paired_ratios_against_fp32_onnx_of_the_same_round(results):
    assert results["speed_baseline"].startswith("wiflow-tiny.fp32.onnx")
    base = next(x for x in results["rows"] if x["precision"] == "fp32" and x["kind"] == "onnx")
    for r in results["rows"]:
        for b in ("1", "4"):
            sr, cross = r["speed_vs_fp32_onnx"][b], r["speed_vs_fp32_onnx_cross_process"][b]
            mine = r["latency"][b]["rounds_p50_ms"]
            # across processes: the baseline job's p50 of the same round
            assert cross["base_rounds_p50_ms"] == base["latency"][b]["rounds_p50_ms"]
            assert cross["rounds"] == pytest.approx([bp / p for bp, p in zip(cross["base_rounds_p50_ms"], mine)])
            if r is base:
                assert sr["median"] == 1.0 and sr["q1"] == sr["q3"] == 1.0
            elif r["kind"] == "onnx":  # timed in alternating blocks with the baseline, in one process
                assert "same process" in sr["pairing"] and len(sr["base_rounds_p50_ms"]) == 2
                assert sr["rounds"] == pytest.approx([bp / p for bp, p in zip(sr["base_rounds_p50_ms"], mine)])
            else:  # torch runs alone in its process: compared across processes
                assert sr == cross
    assert len(results["rounds_detail"]) == 2
    for rd in results["rounds_detail"]:
        assert sorted(rd["order"]) == sorted(f"{r['artifact']} on {r['backend']}" for r in results["rows"])
        assert len(rd["probe_ms"]) == 3 + 1  # before every pair and at the end


def test_accuracy_interval_and_recording_hits(results):
    torch_row = next(r for r in results["rows"] if r["kind"] == "torch")
    ci = torch_row["delta_pck20_ci"]
    assert (ci["delta_pp"], ci["low_pp"], ci["high_pp"]) == (0.0, 0.0, 0.0)  # the reference against itself
    for r in results["rows"]:
        by = r["accuracy"]["by_recording"]
        hits, units = sum(by["hits"]["0.2"]), sum(by["windows"]) * by["joints_per_window"]
        assert hits / units == pytest.approx(pck_at(r["accuracy"]["clean"]["pck"], 0.2), abs=1e-12)
        assert sum(by["windows"]) == r["accuracy"]["clean"]["n"]
        c = r["delta_pck20_ci"]
        assert c["low_pp"] <= c["delta_pp"] <= c["high_pp"] and c["recordings"] == len(by["recordings"])
        assert c["delta_pp"] == pytest.approx(pck_at(r["delta_pck_pp"], 0.2))


def test_compute_figures_follow_from_macs_and_latency(results):
    peak = results["machine"]["peak"]
    for r in results["rows"]:
        comp = r["compute"]
        assert comp["macs_per_window"] > 1e5
        assert set(comp["by_batch"]) == {"1", "4"}  # every batch size benched, so the loop below checks each
        for b, a in comp["by_batch"].items():
            p50 = r["latency"][b]["p50_ms"]
            assert a["gmacs_per_s"] == pytest.approx(comp["macs_per_window"] * int(b) / 1e9 / (p50 / 1e3))
            want_peak = peak["int8_gmacs_at_threads"] if r["precision"] == "int8" else peak["fp32_gmacs_at_threads"]
            assert a["fraction_of_peak"] == pytest.approx(a["gmacs_per_s"] / want_peak)
    # the torch checkpoint does the same arithmetic as its fp32 export
    torch_row = next(r for r in results["rows"] if r["kind"] == "torch")
    fp32 = next(r for r in results["rows"] if r["precision"] == "fp32" and r["kind"] == "onnx")
    assert torch_row["compute"]["macs_per_window"] == fp32["compute"]["macs_per_window"]


def test_disturbed_rounds_are_marked_and_left_out(folder, tiny_data, monkeypatch):
    import edgepose.benchmarking.run as run_mod

    # bare readings are judged as they are; round 2 has one reading 150 % above the run's reference,
    # beyond the spike tolerance max(1.0, 8 × jitter) of the disturbance rule
    readings = iter([1.0] * 4 + [1.0, 1.0, 2.5, 1.0] + [1.0] * 4)

    class FakeProbe:
        def __init__(self, *a, **k):
            pass

        def time_ms(self):
            return next(readings)

    monkeypatch.setattr(run_mod, "DisturbanceProbe", FakeProbe)
    res = bench(folder, "cpu", (2,), 1, FAST, tiny_data, log=lambda s: None, isolate=False, rounds=3,
                probe=ProbeSpec(margin=0.2))
    assert [r["disturbed"] for r in res["rounds_detail"]] == [False, True, False]
    assert [r["why"] for r in res["rounds_detail"]] == [None, "slow reading", None]
    assert res["rounds_used"] == 2 and res["rounds_disturbed"] == 1
    for r in res["rows"]:
        lat = r["latency"]["2"]
        kept = [lat["rounds_p50_ms"][0], lat["rounds_p50_ms"][2]]
        assert lat["p50_ms"] == pytest.approx(sum(kept) / 2) and lat["rounds_used"] == 2
        assert r["speed_vs_fp32_onnx"]["2"]["n"] == 2 and len(r["speed_vs_fp32_onnx"]["2"]["rounds"]) == 3


@pytest.mark.parametrize("parallel", ["batch", "intra"])
def test_bench_runs_every_onnx_cpu_artifact_in_the_parallel_mode_it_records(folder, tiny_data, monkeypatch, parallel):
    import edgepose.runtime.session as session_mod
    from edgepose.reporting.build import machine_name

    made = []
    real = session_mod.OrtRunner

    def spy(*a, **k):
        runner = real(*a, **k)
        made.append((runner.parallel, runner.workers))
        return runner

    monkeypatch.setattr(session_mod, "OrtRunner", spy)
    res = bench(folder, "cpu", (3,), 2, FAST, tiny_data, log=lambda s: None, isolate=False, rounds=1,
                accuracy=False, probe=None, parallel=parallel)
    onnx_rows = [r for r in res["rows"] if r["backend"] == "ort-cpu"]
    assert res["parallel"] == parallel and onnx_rows and all(r["parallel"] == parallel for r in onnx_rows)
    torch_rows = [r for r in res["rows"] if r["backend"] == "torch-cpu"]
    assert torch_rows and all(r["parallel"] == "intra" for r in torch_rows)  # torch never shards
    assert made and set(made) == {(parallel, 2 if parallel == "batch" else 1)}
    assert machine_name(res).endswith(", 2 threads, batch-sharded ORT" if parallel == "batch" else ", 2 threads")
    with pytest.raises(EdgeposeError, match="unknown parallel mode"):
        bench(folder, "cpu", (3,), 2, FAST, tiny_data, log=lambda s: None, isolate=False, rounds=1, parallel="shards")


def test_cuda_without_gpu_lists_skips_instead_of_failing(folder, tiny_data):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    res = bench(folder, "cuda", (1,), 1, FAST, tiny_data, log=lambda s: None, rounds=1)
    assert res["rows"] == []
    assert {s["backend"] for s in res["skipped"]} >= {"torch-cuda", "ort-cuda"}
    assert all(s["reason"] for s in res["skipped"])
    assert "no CUDA GPU" in res["note"]


def test_report_files_plots_and_grouped_skips(results, folder, tiny_data, tmp_path):
    pa, _ = write_results(results, tmp_path / "cpu.json")
    cuda = bench(folder, "cuda", (1,), 1, FAST, tiny_data, log=lambda s: None, rounds=1)
    pc, _ = write_results(cuda, tmp_path / "cuda.json")
    md, page = build_report([pa, pc], tmp_path / "report")
    text = md.read_text()
    assert "## Verdict" in text and "ship **" in text
    # one verdict per batch size of the CPU run, each naming a single artifact
    verdict = text.split("## Verdict")[1].split("Rule:")[0]
    assert [line.count("ship **") for line in verdict.splitlines() if line.startswith("- ")] == [1, 1]
    # Markdown links PNG files that exist beside it; one latency plot and one speed plot per batch size
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert {"pareto-b1.png", "pareto-b4.png", "speed-b1.png", "speed-b4.png", "size.png"} <= set(links)
    assert all((md.parent / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in links)
    assert "data:image" not in text
    # the HTML is self-contained: every image embedded, none linked
    html = page.read_text()
    assert html.count("src='data:image/png;base64,") == len(links) and ".png'" not in html
    # skipped backends: one line per backend and reason, not one per artifact
    skipped = text.split("## Skipped backends")[1].split("##")[0]
    lines = [line for line in skipped.splitlines() if line.startswith("- ")]
    assert len(lines) == len({(s["backend"], s["reason"]) for s in cuda["skipped"]}) < len(cuda["skipped"])
    machines = text.split("## Machines")[1]
    assert "{" not in machines and "flags " in machines and "GMAC/s" in machines
    assert "GMAC/s" in text.split("## Distance to the machine's limit")[1]


def test_report_rejects_other_json(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"hello": 1}')
    with pytest.raises(EdgeposeError, match="not an edgepose bench results file"):
        build_report([p], tmp_path / "r")


def test_pareto_front():
    # (latency, accuracy): b dominates a; c is slower but more accurate
    assert pareto([(2.0, 50.0), (1.0, 60.0), (3.0, 70.0)]) == [False, True, True]


def _summarize_module():
    spec = importlib.util.spec_from_file_location("summarize", ROOT / "benchmarks" / "summarize.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _with_ratios(doc: dict, threads: int, factors: dict[str, float]) -> dict:
    """A copy of a results document at ``threads`` threads whose paired ratios are scaled per batch.

    Every row's median is scaled, not only the int8/fp16 rows the run-to-run check compares, so a
    check that also looked at fp32 or torch rows would see differences it must not report.
    """
    out = json.loads(json.dumps(doc))
    out["threads"] = threads
    for r in out["rows"]:
        for b, f in factors.items():
            r["speed_vs_fp32_onnx"][b]["median"] *= f if r["precision"] in ("int8", "fp16") else 3 * f
    return out


def test_bench_json_has_what_summarize_reads(results, tmp_path):
    mod = _summarize_module()
    for key in mod.BENCH_KEYS:
        assert key in results, key
    for r in results["rows"]:
        assert set(mod.ROW_KEYS) <= set(r), set(mod.ROW_KEYS) - set(r)
    assert results["threads"] == 1
    results = json.loads(json.dumps(results))
    int8 = next(r for r in results["rows"] if r["precision"] == "int8")
    assert mod.default_int8(results["rows"]) is None  # `safe` is not what a default export writes...
    int8["recipe"] = {**int8["recipe"], "recipe": "auto", "chosen": "safe"}  # ...auto's card when it shipped safe is
    assert mod.default_int8(results["rows"]) is int8
    ra = {b: int8["speed_vs_fp32_onnx"][b]["median"] for b in ("1", "4")}
    assert all(v > 0 for v in ra.values())
    # four genuinely different documents: a 2-thread run and its repeat, whose int8 ratio moved by
    # 9 % at batch 1 (inside the 10 % goal), and a 1-thread run and its repeat, whose int8 ratio
    # moved by 11 % at batch 4 (outside it)
    docs = {"run.json": _with_ratios(results, 2, {}),
            "run-repeat.json": _with_ratios(results, 2, {"1": 1.09, "4": 0.97}),
            "run-1t.json": _with_ratios(results, 1, {}),
            "run-1t-repeat.json": _with_ratios(results, 1, {"1": 1.0, "4": 1.11})}
    paths = {}
    for name, doc in docs.items():
        paths[name], _ = write_results(doc, tmp_path / name)
    s = mod.summarize(paths["run.json"], tmp_path / "summary.md", repeat=paths["run-repeat.json"],
                      one_thread=paths["run-1t.json"], one_thread_repeat=paths["run-1t-repeat.json"],
                      reference=ROOT / "benchmarks" / "reference_figures.json")
    names = [c["target"] for c in s.checks]
    assert any(n.startswith("default int8 vs fp32 ONNX, batch") for n in names)  # the default export was found
    assert any(n.startswith("fp32 ONNX batch 64 vs its fp32 floor") for n in names) is False  # no batch 64 here
    agree = {c["target"]: c for c in s.checks if c["target"].startswith("two back-to-back runs")}
    two = agree.pop("two back-to-back runs (2 threads): worst int8/fp16 ratio difference")
    one = agree.pop("two back-to-back runs (1 thread): worst int8/fp16 ratio difference")
    for tag, (a, b) in {"2 threads": ("run.json", "run-repeat.json"), "1 thread": ("run-1t.json", "run-1t-repeat.json")}.items():
        same = agree.pop(f"two back-to-back runs ({tag}): the verdict per batch size")
        va, vb = mod._verdict_names(docs[a]), mod._verdict_names(docs[b])
        assert set(va) == {"b1", "b4"} and same["met"] is (va == vb)
    assert agree == {}  # per pair of runs at the same thread count, none across thread counts
    label = int8["label"]
    assert two["measured"] == f"9.0 % ({label} b1: {ra['1']:.3f} vs {1.09 * ra['1']:.3f})" and two["met"] is True
    assert one["measured"] == f"11.0 % ({label} b4: {ra['4']:.3f} vs {1.11 * ra['4']:.3f})" and one["met"] is False
    assert two["goal"] == one["goal"] == "≤ 10 %"
    # the speed table shows each run's own ratio, and the targets table says which goal was missed
    md = (tmp_path / "summary.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith(f"| {label} | ort-cpu |"))
    assert f"{1.09 * ra['1']:.3f} (" in row and f"{1.11 * ra['4']:.3f} (" in row
    assert "| two back-to-back runs (1 thread): worst int8/fp16 ratio difference | 11.0 %" in md
    assert md.count("| **no** |") == sum(not c["met"] for c in s.checks) >= 1
    assert json.loads((tmp_path / "summary.json").read_text())["checks"] == s.checks


def test_missing_card_dataset_says_which_data_to_pass(folder, tmp_path):
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copyfile(folder / "wiflow-tiny.fp32.safetensors", moved / "wiflow-tiny.fp32.safetensors")
    card = json.loads((folder / "wiflow-tiny.fp32.json").read_text())
    card["dataset"]["path"] = str(tmp_path / "gone")
    card["dataset"].pop("synth", None)  # with its generator config the synthetic set would be regenerated
    (moved / "wiflow-tiny.fp32.json").write_text(json.dumps(card))
    with pytest.raises(EdgeposeError, match=r"fingerprint " + card["dataset"]["fingerprint"][:16] + r".*pass --data DIR"):
        bench(moved, "cpu", (1,), 1, FAST, log=lambda s: None, isolate=False, rounds=1)


def test_summarize_says_whether_two_runs_name_the_same_artifact():
    """Issue 22's target: back-to-back runs ship the same artifact per batch (or the same undecided pair)."""
    from tests.reporting.test_verdict import FP32, _row

    mod = _summarize_module()

    def doc(*rows):
        return {"batches": [1], "rows": [FP32, *rows]}

    fast = _row("int8", "int8", [1.3, 1.31, 1.29, 1.3, 1.32], (-0.1, -0.3, 0.1), 1.0)
    level = _row("int8", "int8", [0.97, 1.02, 1.0, 0.99, 1.03], (-0.1, -0.3, 0.1), 1.0)
    two_rounds = _row("int8", "int8", [1.3, 1.31], (-0.1, -0.3, 0.1), 1.0)
    assert mod._verdict_names(doc(fast)) == {"b1": "int8"}
    assert mod._verdict_names(doc(level)) == {"b1": "fp32"}  # a tie shipped by accuracy: fp32's lower end is higher
    fewer = {**FP32, "speed_vs_fp32_onnx": {"1": {**FP32["speed_vs_fp32_onnx"]["1"], "n": 2, "undisturbed_rounds": 2}}}
    pair = mod._verdict_names({"batches": [1], "rows": [fewer, two_rounds]})
    assert pair == {"b1": "undecided between fp32 and int8"}
    s = mod.Summary()
    mod._same_verdict(s, "2 threads", doc(fast), doc(level))
    mod._same_verdict(s, "2 threads", doc(fast), doc(fast))
    mod._same_verdict(s, "2 threads", {"batches": [1], "rows": [fewer, two_rounds]},
                      {"batches": [1], "rows": [fewer, two_rounds]})
    assert [c["met"] for c in s.checks] == [False, True, True]
    assert s.checks[0]["measured"] == "b1 int8 / fp32"


def test_summarize_finds_autos_fp32_fallback_as_the_default_int8_row():
    mod = _summarize_module()
    fallback = {"precision": "fp32", "method": "export", "backend": "ort-cpu", "target": "ort-cpu",
                "recipe": {"recipe": "auto", "chosen": "fp32"}}
    plain = {"precision": "fp32", "method": "export", "backend": "ort-cpu", "recipe": {}}
    other_calib = {"precision": "int8", "method": "ptq", "backend": "ort-cpu",
                   "recipe": {"recipe": "auto", "chosen": "safe", "calibrator": "entropy-not-default"}}
    assert mod.default_int8([plain, other_calib, fallback]) is fallback
    assert mod.default_int8([plain, other_calib]) is None


def test_a_default_int8_that_chose_a_plan_is_drawn_as_a_plan():
    from edgepose.reporting.plots import is_plan

    assert is_plan({"recipe": {"recipe": "auto", "chosen": "plan-latency"}})
    assert is_plan({"recipe": {"recipe": "plan-size"}})
    assert not is_plan({"recipe": {"recipe": "auto", "chosen": "fp32"}})
    assert not is_plan({"recipe": {"recipe": "checked", "chosen": "guarded"}}) and not is_plan({})
