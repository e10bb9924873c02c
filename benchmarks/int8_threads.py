"""Why int8 loses its lead over fp32 at 2 ONNX Runtime threads (issue 22), measured in one run.

Builds ``fp32``, int8 ``safe`` and ``global`` (edgepose's exporter) and ``except_attn`` (every
quantization group int8 but the attention blocks and their q/k/v convs, from the exporter's
``QuantProbe``) from a checkpoint, or takes prebuilt graphs (``--graph NAME=PATH``), and records:

* per-op kernel time (ORT profiler, split per ``model_run`` call) and wall time (a second,
  unprofiled session) at 1 and 2 threads, batch 1 and 64, all sessions alive, rotated rounds; a
  round is disturbed when other processes used > 15 % of a CPU, and medians skip disturbed rounds
  when 3 clean ones exist; conv time is also split by model stage (TCN, 2-D stack, …);
* node counts of ORT's optimized graph and the QLinearConv batch-parallel eligibility of every
  int8 conv (``int8_threads_lib.batch_parallel``);
* one Transpose node with the int8 attention's shapes, 1 vs 2 threads, spinning on and off.

Spinning is off as in ``edgepose.runtime`` unless ``--spinning``. Every run records the CPU flags,
the ONNX Runtime version and the load average.

    python benchmarks/int8_threads.py --out benchmarks/results/int8-threads-NAME.json
    python benchmarks/int8_threads.py --eligibility GRAPH.onnx        # the conv table of one graph
    python benchmarks/int8_threads.py --convert DIR --out …json        # raw files of the first investigation
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import int8_threads_lib as lib
import numpy as np
from common import inputs_for, parse_calls

#: one-node Transpose cases (input shape, perm): what the int8 attention runs at batch 64
TRANSPOSE_CASES = [([960, 4, 8, 20], [0, 1, 3, 2]), ([1280, 4, 15, 15], [0, 1, 3, 2]), ([960, 32, 20], [0, 2, 1]),
                   ([64, 540, 20], [0, 2, 1]), ([64, 15, 32, 20], [0, 3, 2, 1])]
DEFAULTS = {"rounds": 7, "calls": "1=40,64=4", "micro_rounds": 5}


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def busy_cpu_seconds() -> float:
    """CPU seconds all processes have used (``/proc/stat``, idle and iowait excluded)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


class OtherCPU:
    """CPUs other processes used while the block ran (``/proc/stat`` minus this process)."""

    def __enter__(self):
        self.b0, self.t0, self.w0 = busy_cpu_seconds(), os.times(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.w0
        t1 = os.times()
        own = (t1.user + t1.system) - (self.t0.user + self.t0.system)
        self.value = max(0.0, (busy_cpu_seconds() - self.b0 - own) / wall)
        self.seconds = wall
        return False


def ort_options(threads: int, spinning: bool):
    """Session options as ``edgepose.runtime`` makes them (full optimisation, one inter-op thread)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.log_severity_level = 3
    return so


def machine_record() -> dict:
    import onnxruntime as ort

    from edgepose.runtime.cpu import cpu_flags, cpu_summary

    return {"machine": cpu_summary(), "versions": {"onnxruntime": ort.__version__},
            "output_alignment": lib.output_alignment(cpu_flags())}


# --------------------------------------------------------------------------- graphs


def build_graphs(checkpoint: str, work: Path, log=print) -> tuple[dict[str, Path], dict[str, float]]:
    """Export fp32, int8 ``safe`` and ``global`` through edgepose's exporter and build ``except_attn``
    with its probe (same calibration); returns the paths and each int8 graph's validation ΔPCK@20."""
    from edgepose.exporting import ExportRequest, export, load_context

    def exported(sub: str, **kw) -> Path:
        out = work / sub
        found = sorted(out.glob("*.onnx")) if out.is_dir() else []
        if found:
            return found[0]
        return export(ExportRequest(checkpoint=checkpoint, out=out, log=lambda s: log(f"    {s}"), **kw))[0]

    # ranges as calibrated, as in the committed profiles: the range search changes no kernel
    # (benchmarks/results/range-search.json), only scale and bias values
    paths = {"fp32": exported("fp32", precision="fp32"),
             "safe": exported("safe", precision="int8", recipe="safe", range_search="off"),
             "global": exported("global", precision="int8", recipe="global", range_search="off")}
    (work / "probe").mkdir(parents=True, exist_ok=True)  # the context writes its fp32 graph there
    ctx = load_context(ExportRequest(checkpoint=checkpoint, out=work / "probe", precision="int8", log=log),
                       work / "probe")
    probe = ctx.probe(threads=2)
    keep = [g.name for g in probe.groups if not g.name.startswith("attn")]
    paths["except_attn"] = work / "except_attn.onnx"
    if not paths["except_attn"].is_file():
        probe.build(keep, paths["except_attn"])
    return paths, {v: probe.delta(probe.score(p))[0] for v, p in paths.items() if v != "fp32"}


def optimized_graph(path: Path, tmp: Path):
    """ONNX Runtime's optimized graph of ``path`` (full optimisation, CPU provider)."""
    import onnx
    import onnxruntime as ort

    so = ort_options(1, False)
    so.optimized_model_filepath = str(tmp / f"{path.stem}.opt.onnx")
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return onnx.load(so.optimized_model_filepath)


def graph_facts(paths: dict[str, Path], align: int, tmp: Path) -> tuple[dict, dict, dict]:
    """Node counts of ORT's optimized graphs, the eligibility of every int8 graph, and per graph the
    stage of each conv node of the optimized graph."""
    import onnx

    counts, elig, stages = {}, {}, {}
    for v, p in paths.items():
        proto, opt = onnx.load(str(p)), optimized_graph(p, tmp)
        counts[v] = dict(sorted(Counter(n.op_type for n in opt.graph.node).items()))
        by_name = lib.conv_stages_of(proto)
        stages[v] = {n.name: lib.conv_node_stage(n.name, by_name) for n in opt.graph.node
                     if n.op_type in ("Conv", "FusedConv", "QLinearConv")}
        if v != "fp32":
            elig[v] = lib.eligibility_summary(lib.conv_rows(proto, align))
    return counts, elig, stages


# --------------------------------------------------------------------------- shared by the variant scripts


def variant_parser(description: str, defaults: dict) -> argparse.ArgumentParser:
    """The options every graph-variant profiling script takes (``tcn_padding.py``, ``tcn_fold.py``)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--checkpoint", default="wiflow-half")
    ap.add_argument("--work", type=Path, default=None, help="graph folder (default: a temporary one)")
    ap.add_argument("--rounds", type=int, default=defaults["rounds"])
    ap.add_argument("--calls", default=defaults["calls"], help="batch=calls per configuration and round")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", type=Path, required=True)
    return ap


def variant_header(tool: str, a: argparse.Namespace, rec: dict, run_rec: dict) -> dict:
    """The fields every variant script's results start with: tool, time, machine, settings, the run."""
    return {"tool": tool, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "checkpoint": a.checkpoint, "machine": rec["machine"], "versions": rec["versions"], "note": a.note,
            "settings": {"rounds": a.rounds, "calls": a.calls, "spinning": False, "inputs": "clean test windows",
                         "output_alignment": rec["output_alignment"], "disturbed_above_cpu": lib.DISTURBED},
            "runs": {"profile": {"what": "per-op profiles and wall time (int8_threads.profile_run)",
                                 "cpu_flags": sorted(f for f, on in rec["machine"]["cpu_flags"].items() if on),
                                 "onnxruntime": rec["versions"]["onnxruntime"], **run_rec}}}


def write_results(out: Path, doc: dict, to_markdown) -> None:
    """``out`` (JSON) and its ``.md`` beside it, each written atomically."""
    from edgepose.io import atomic_path, write_json

    write_json(out, doc)
    with atomic_path(out.with_suffix(".md")) as tmp_md:
        tmp_md.write_text(to_markdown(doc), encoding="utf-8")
    print(f"wrote {out} and {out.with_suffix('.md')}")


# --------------------------------------------------------------------------- timing


def profile_run(paths: dict[str, Path], threads: list[int], feeds: dict[int, np.ndarray], rounds: int,
                calls: dict[int, int], spinning: bool, stages: dict, tmp: Path, log=print) -> tuple[list, dict]:
    """Per-op kernel and wall time of every graph × thread count, all sessions alive, rotated rounds."""
    import onnxruntime as ort

    configs = []
    for v, p in paths.items():
        for t in threads:
            so = ort_options(t, spinning)
            so.enable_profiling, so.profile_file_prefix = True, str(tmp / f"{v}_{t}t")
            configs.append({"variant": v, "threads": t, "tags": [], "wall": defaultdict(list),
                            "prof": ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"]),
                            "plain": ort.InferenceSession(str(p), ort_options(t, spinning),
                                                          providers=["CPUExecutionProvider"])})
    name = configs[0]["plain"].get_inputs()[0].name
    for c in configs:
        for b, x in feeds.items():
            for _ in range(3):
                c["prof"].run(None, {name: x})
                c["plain"].run(None, {name: x})
                c["tags"].append(("warm", b))
    record = {"loadavg_before": loadavg(), "rounds_detail": []}
    for r in range(rounds):
        order = configs[r % len(configs):] + configs[: r % len(configs)]
        with OtherCPU() as oc:
            for b, x in feeds.items():
                for c in (order if r % 2 == 0 else order[::-1]):
                    time.sleep(0.02)  # let the previous session's pool threads go idle
                    for _ in range(calls[b]):
                        c["prof"].run(None, {name: x})
                        c["tags"].append((r, b))
                    time.sleep(0.02)
                    for _ in range(calls[b]):
                        t0 = time.perf_counter()
                        c["plain"].run(None, {name: x})
                        c["wall"][(r, b)].append((time.perf_counter() - t0) * 1e3)
        record["rounds_detail"].append({"round": r, "seconds": oc.seconds, "other_cpu": oc.value,
                                        "disturbed": oc.value > lib.DISTURBED, "loadavg": loadavg()})
        log(f"  round {r}: {oc.seconds:.1f} s, other processes {oc.value:.2f} CPU")
    record["loadavg_after"] = loadavg()
    clean = [not d["disturbed"] for d in record["rounds_detail"]]
    record.update(rounds=rounds, undisturbed_rounds=sum(clean), spinning=spinning,
                  calls_per_round={str(b): n for b, n in calls.items()})
    rows = []
    for c in configs:
        prof = Path(c["prof"].end_profiling())
        per_call = lib.per_call_times(json.loads(prof.read_text()))
        prof.unlink(missing_ok=True)
        if len(per_call) != len(c["tags"]):
            raise RuntimeError(f"{c['variant']}: {len(per_call)} profiled calls for {len(c['tags'])} runs")
        for b in feeds:
            ops_rounds, stage_rounds, node_rounds = defaultdict(list), defaultdict(list), defaultdict(list)
            for r in range(rounds):
                idx = [i for i, tag in enumerate(c["tags"]) if tag == (r, b)]
                ops, stage, conv = defaultdict(float), defaultdict(float), defaultdict(float)
                for i in idx:
                    for k, ms in per_call[i][0].items():
                        ops[k] += ms / len(idx)
                    for node, ms in per_call[i][1].items():
                        if node in stages[c["variant"]]:
                            stage[stages[c["variant"]][node]] += ms / len(idx)
                            conv[lib.base_name(node)] += ms / len(idx)
                for k in set(ops) | set(ops_rounds):
                    ops_rounds[k].append(ops.get(k, 0.0))
                for k in set(stage) | set(stage_rounds):
                    stage_rounds[k].append(stage.get(k, 0.0))
                for k in set(conv) | set(node_rounds):
                    node_rounds[k].append(conv.get(k, 0.0))
            ops_ms = {k: lib.summarize(v, clean)["median"] for k, v in ops_rounds.items()}
            rows.append({"run": "profile", "variant": c["variant"], "threads": c["threads"], "batch": b,
                         "wall_ms": lib.summarize([statistics.median(c["wall"][(r, b)]) for r in range(rounds)], clean),
                         "ops_ms": dict(sorted(ops_ms.items(), key=lambda kv: -kv[1])), "buckets": lib.buckets(ops_ms),
                         "conv_ms_by_stage": {k: lib.summarize(v, clean)["median"] for k, v in stage_rounds.items()},
                         "conv_ms_by_node": {k: lib.summarize(v, clean)["median"] for k, v in sorted(node_rounds.items())}})
    lib.add_speed_vs_fp32(rows)
    return rows, record


def micro_transpose(rounds: int, calls: int = 20) -> tuple[list[dict], dict]:
    """A lone Transpose at 1 and 2 threads, spinning on and off, the four sessions alternated."""
    import onnxruntime as ort

    cfg = {"1t": (1, False), "1t_spin": (1, True), "2t": (2, False), "2t_spin": (2, True)}
    rows, record = [], {"loadavg_before": loadavg(), "rounds": rounds, "spinning": "on and off"}
    with OtherCPU() as oc:
        for shape, perm in TRANSPOSE_CASES:
            for dtype in ("uint8", "float32"):
                model = lib.transpose_model(shape, perm, dtype)
                x = np.random.default_rng(0).integers(0, 255, shape).astype(dtype)
                sess = {k: ort.InferenceSession(model, ort_options(t, s), providers=["CPUExecutionProvider"])
                        for k, (t, s) in cfg.items()}
                times: dict[str, list[float]] = {k: [] for k in cfg}
                for s in sess.values():
                    for _ in range(3):
                        s.run(None, {"x": x})
                for r in range(rounds):
                    for k in (list(cfg) if r % 2 == 0 else list(cfg)[::-1]):
                        ts = []
                        for _ in range(calls):
                            t0 = time.perf_counter()
                            sess[k].run(None, {"x": x})
                            ts.append(time.perf_counter() - t0)
                        times[k].append(statistics.median(ts) * 1e6)
                us = {k: statistics.median(v) for k, v in times.items()}
                rows.append({"shape": shape, "perm": perm, "dtype": dtype, "us": us,
                             "slowdown_2t": us["2t"] / us["1t"], "slowdown_2t_spin": us["2t_spin"] / us["1t_spin"]})
    record.update(other_cpu=oc.value, disturbed=oc.value > lib.DISTURBED, loadavg_after=loadavg())
    return rows, record


# --------------------------------------------------------------------------- the first investigation's raw files

def convert_legacy(src: Path) -> dict:
    """The results document of the first investigation's raw files (``results/`` and ``art/`` of its
    working folder; see ``docs/int8-threads.md``): recomputes nothing that was timed, recomputes the
    conv eligibility of the ``safe`` artifact with this script's rule."""
    import onnx

    res, art = src / "results", src / "art"
    recipes, fold = (json.loads((res / f).read_text()) for f in ("recipes.json", "fold.json"))
    mt, mc = (json.loads((res / f).read_text()) for f in ("micro_transpose.json", "micro_conv.json"))
    from edgepose.runtime.cpu import cpu_flags, cpu_summary

    checked = ("avx2", "avx512f", "avx512_vnni", "amx_tile", "amx_int8", "amx_bf16")  # what prof.py looked for
    flags = {f: f in recipes["cpu_flags"] for f in checked}
    same_cpu = all((f in cpu_flags()) == on for f, on in flags.items())
    variants_raw = json.loads((art / "variants" / "variants.json").read_text())["variants"]
    doc = {"tool": "benchmarks/int8_threads.py --convert", "checkpoint": "wiflow-half",
           "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "measured": "2026-12-04 (file times of the raw results)",
           "machine": {**(cpu_summary() if same_cpu else {"cpu_model": "not recorded"}), "cpu_count": recipes["nproc"],
                       "cpu_flags": flags, "recorded": "flags and core count from the raw files; the model name from "
                       "the converting machine when its flags agree" if same_cpu else "flags and core count only"},
           "versions": {"onnxruntime": recipes["ort"]},
           "settings": {"output_alignment": lib.output_alignment(recipes["cpu_flags"] + ["avx512bw"])}}
    doc["runs"] = {
        "recipes": lib.legacy_run(recipes, "fp32, safe, global and probe-built group variants; paired profiled + "
                               "unprofiled sessions (prof.py --spec spec_recipes.json --rounds 7)", "recipes.json"),
        "fold": lib.legacy_run(fold, "the same with the batch-fold rewrite of the 2-D stack (prof.py --spec "
                            "spec_fold.json --rounds 7)", "fold.json"),
        "micro_transpose": {"what": "one Transpose node, 5 paired rounds (micro_transpose.py)",
                            "source": "micro_transpose.json", "cpu_flags": mt["cpu_flags"], "onnxruntime": mt["ort"],
                            "spinning": "on and off", "rounds": 5, "idle_gate": "started when the machine was idle", "loadavg_before": None, "loadavg_after": None},
        "micro_conv": {"what": "one QDQ conv, QLinearConv kernel time, 6 alternated rounds, spinning on "
                       "(micro_conv.py)", "source": "micro_conv.json", "cpu_flags": mc["cpu_flags"],
                       "onnxruntime": mc["ort"], "spinning": True, "rounds": 6, "loadavg_before": None,
                       "loadavg_after": None},
        "convnodes": {"what": "per-node QLinearConv kernel time at batch 64, 1 and 2 threads alternated, 6 rounds "
                      "(convnodes.py; for safe the per-round totals spread widely; flags and version not in the listing: the "
                      "same machine and session as recipes)", "source": "convnodes_*_b64.txt",
                      "cpu_flags": recipes["cpu_flags"], "onnxruntime": recipes["ort"], "spinning": True, "rounds": 6, "loadavg_before": None, "loadavg_after": None}}
    doc["profiles"] = lib.legacy_profiles(recipes, "recipes") + lib.legacy_profiles(fold, "fold")
    names = list(dict.fromkeys(p["variant"] for p in doc["profiles"]))
    val = {lib.legacy_label(k): v["val_dpck20_pp"] for k, v in variants_raw.items()}
    doc["variants"] = {v: {"description": lib.VARIANTS.get(v) or lib.VARIANTS[v[:-5]] + ", on the exact batch-fold rewrite "
                           "of the 2-D stack ([B,1,T,F] → [1,1,B·T,F])", "val_dpck20_pp": val.get(v)} for v in names}
    counts = {}
    for f in ("opt_counts_recipes.json", "opt_counts_fold.json"):
        counts |= {lib.legacy_label(k): v for k, v in json.loads((res / f).read_text()).items()}
    doc["graph_counts"] = {v: counts[v] for v in names if v in counts}
    safe = onnx.load(str(art / "wiflow-half.int8-ptq-percentile-safe-ort-cpu.onnx"))
    doc["eligibility"] = {"safe": lib.eligibility_summary(lib.conv_rows(safe, doc["settings"]["output_alignment"]))}
    recorded = json.loads((res / "conv_eligibility_safe.json").read_text())
    doc["eligibility"]["safe"]["recorded_batch_parallel"] = sum(r["sym_batch_parallel"] for r in recorded)
    doc["conv_scaling"] = (
        lib.legacy_conv_nodes((res / "convnodes_safe_b64.txt").read_text(), "safe", "convnodes")
        + lib.legacy_conv_nodes((res / "convnodes_fold_no_attn_no_qkv_b64.txt").read_text(), "except_attn_fold",
                             "convnodes"))
    doc["micro_transpose"] = [{"shape": r["shape"], "perm": r["perm"], "dtype": r["dtype"],
                               "us": {k: r[f"{k[:2]}_spin{0 if k in ('1t', '2t') else 1}"]["median_us"]
                                      for k in ("1t", "1t_spin", "2t", "2t_spin")}} for r in mt["results"]]
    for r in doc["micro_transpose"]:
        r["slowdown_2t"], r["slowdown_2t_spin"] = r["us"]["2t"] / r["us"]["1t"], r["us"]["2t_spin"] / r["us"]["1t_spin"]
    doc["micro_conv"] = [{"case": r["case"], "batch": r["batch"], "us_1t": r["qlinearconv_us_1t"],
                          "us_2t": r["qlinearconv_us_2t"], "speedup_2t": r["speedup_2t"]} for r in mc["rows"]]
    return doc


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="wiflow-half")
    ap.add_argument("--work", type=Path, default=Path("runs/int8-threads"), help="artifact folder (reused)")
    ap.add_argument("--graph", action="append", default=[], metavar="NAME=PATH",
                    help="time this prebuilt graph instead of building the variants (repeat; put fp32 first)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=DEFAULTS["rounds"])
    ap.add_argument("--calls", default=DEFAULTS["calls"], help="batch=calls per configuration and round")
    ap.add_argument("--micro-rounds", type=int, default=DEFAULTS["micro_rounds"], help="0 skips the micro-benchmark")
    ap.add_argument("--spinning", action="store_true", help="intra-op spinning on (ONNX Runtime's default)")
    ap.add_argument("--note", default="", help="written into the JSON's note")
    ap.add_argument("--eligibility", type=Path, help="print the QLinearConv eligibility table of one graph and stop")
    ap.add_argument("--convert", type=Path, metavar="DIR", help="convert the first investigation's raw files")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/int8-threads.json"))
    a = ap.parse_args(argv)
    from edgepose.io import write_json

    if a.eligibility:
        import onnx

        from edgepose.runtime.cpu import cpu_flags

        summary = lib.eligibility_summary(lib.conv_rows(onnx.load(str(a.eligibility)), lib.output_alignment(cpu_flags())))
        for r in summary["rows"]:
            print(f"{r['node']:28s} {r['stage']:8s} g={r['groups']:<3d} {r['cin']:4d}→{r['cout']:<4d} "
                  f"{'yes' if r['batch_parallel'] else 'no: ' + '; '.join(r['why_not'])}")
        print(f"{summary['batch_parallel']} of {summary['int8_convs']} int8 convs batch-parallel")
        return 0
    if a.convert:
        doc = convert_legacy(a.convert)
        doc["note"] = a.note
    else:
        doc = run(a)
    write_json(a.out, doc)
    from edgepose.io import atomic_path

    with atomic_path(a.out.with_suffix(".md")) as tmp:
        tmp.write_text(lib.to_markdown(doc), encoding="utf-8")
    print(f"wrote {a.out} and {a.out.with_suffix('.md')}")
    return 0


def run(a) -> dict:
    """Build (or take) the graphs and measure everything; the results document."""
    rec = machine_record()
    threads, calls = [int(t) for t in a.threads.split(",")], parse_calls(a.calls)
    reduced = [f"{k} {getattr(a, k)} (full: {v})" for k, v in DEFAULTS.items() if str(getattr(a, k)) != str(v)]
    doc = {"tool": "benchmarks/int8_threads.py", "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "checkpoint": a.checkpoint, "machine": rec["machine"], "versions": rec["versions"],
           "note": " ".join(x for x in ("settings differ from the defaults: " + ", ".join(reduced) + "." if reduced
                                        else "", a.note) if x),
           "settings": {"threads": threads, "calls": a.calls, "rounds": a.rounds, "spinning": a.spinning,
                        "micro_rounds": a.micro_rounds, "output_alignment": rec["output_alignment"],
                        "disturbed_above_cpu": lib.DISTURBED}}
    if a.graph:
        paths = {k: Path(v) for k, v in (g.split("=", 1) for g in a.graph)}
        val: dict[str, float] = {}
    else:
        paths, val = build_graphs(a.checkpoint, a.work)
    doc["variants"] = {v: {"description": lib.VARIANTS.get(v, str(p)), "file": p.name, "val_dpck20_pp": val.get(v)}
                       for v, p in paths.items()}
    with tempfile.TemporaryDirectory(prefix="int8-threads-") as tmp_s:
        tmp = Path(tmp_s)
        doc["graph_counts"], doc["eligibility"], stages = graph_facts(paths, rec["output_alignment"], tmp)
        import onnxruntime as ort

        from edgepose.zoo import resolve_dataset

        inp = ort.InferenceSession(str(next(iter(paths.values()))), providers=["CPUExecutionProvider"]).get_inputs()[0]
        data = None if a.graph else resolve_dataset(a.checkpoint, None, "calibration")
        doc["settings"]["inputs"] = "clean test windows" if data else "uniform [0, 1) noise (prebuilt graphs)"
        feeds = inputs_for(sorted(calls), tuple(inp.shape[1:]), data)
        doc["profiles"], run_rec = profile_run(paths, threads, feeds, a.rounds, calls, a.spinning, stages, tmp)
        doc["runs"] = {"profile": {"what": "per-op profiles and wall time (this script)", "cpu_flags":
                                   sorted(f for f, on in rec["machine"]["cpu_flags"].items() if on),
                                   "onnxruntime": rec["versions"]["onnxruntime"], **run_rec}}
        doc["conv_scaling"] = lib.conv_scaling(doc["profiles"])
        if a.micro_rounds:
            doc["micro_transpose"], mrec = micro_transpose(a.micro_rounds)
            doc["runs"]["micro_transpose"] = {"what": "one Transpose node (this script)",
                                              "cpu_flags": doc["runs"]["profile"]["cpu_flags"],
                                              "onnxruntime": rec["versions"]["onnxruntime"], **mrec}
    return doc


if __name__ == "__main__":
    raise SystemExit(main())
