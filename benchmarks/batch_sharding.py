"""Batch-sharded against intra-op execution: every artifact of an export folder, both modes, one process.

``edgepose.runtime.parallel`` offers two ways for one call to use ``--threads`` cores on ONNX
Runtime CPU: ``intra`` (one call on the intra-op pool) and ``batch`` (the call's windows cut into
one shard per thread, run at once on one-thread sessions). This script times every ONNX artifact
of a folder (fp32 first) in both modes and at one thread, in rotated rounds with all sessions
alive, and records per round and batch size:

* the median call time of every (artifact, mode);
* each artifact's gain from the batch mode: its intra time / its batch time, same round;
* each artifact against fp32 in the same mode, and its batch mode against fp32's faster mode.

A round is disturbed when other processes used more than 15 % of a CPU while it ran
(``/proc/stat``); medians skip disturbed rounds when three clean ones exist. The outputs of the two
modes are compared on the same windows (they must be the same numbers). Every run records the CPU
model and flags, the ONNX Runtime version and the load average.

    python benchmarks/batch_sharding.py runs/default/artifacts --data DIR \
        --out benchmarks/results/batch-sharding-NAME.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import statistics
import time
from pathlib import Path

import int8_threads_lib as lib
import numpy as np
from common import inputs_for, parse_calls
from int8_threads import OtherCPU, loadavg, machine_record, write_results

DEFAULTS = {"threads": 2, "rounds": 7, "calls": "1=200,8=60,37=16,64=10"}
#: configurations timed for every artifact: (label, threads, mode); threads None = --threads
CONFIGS = (("intra", None, "intra"), ("batch", None, "batch"), ("1 thread", 1, "intra"))


def _describe(path: Path) -> tuple[str, str]:
    """(variant key for selectors, e.g. ``int8-ptq-auto``; readable label) of an artifact, from its card."""
    import json

    card = json.loads(Path(str(path) + ".json").read_text())
    recipe = card.get("recipe") or {}
    if card["precision"] != "int8":
        return card["precision"], f"{card['precision']} export"
    key = f"int8-{card.get('method') or 'ptq'}-{recipe.get('recipe', '')}"
    chosen = recipe.get("chosen")
    return key, f"int8 {card.get('method') or 'ptq'} {recipe.get('recipe', '')}" + (f" ({chosen})" if chosen else "")


def run(folder: Path, data: Path | None, threads: int, rounds: int, calls: dict[int, int], log=print) -> dict:
    from edgepose.runtime.session import OrtRunner

    paths = sorted(folder.glob("*.onnx"), key=lambda p: (".fp32." not in p.name, p.name))
    if not paths or ".fp32." not in paths[0].name:
        raise SystemExit(f"{folder}: needs an fp32 ONNX artifact (*.fp32.onnx) and others to compare with it")
    feeds = inputs_for(sorted(calls), (540, 20), data)
    runners = {}
    for p in paths:
        for label, t, mode in CONFIGS:
            runners[(p.name, label)] = OrtRunner(p, threads=t or threads, parallel=mode, spinning=False)
    parity = {}  # variant → largest |batch − intra| output difference on the largest batch
    for p in paths:
        x = feeds[max(feeds)]
        parity[_describe(p)[0]] = float(np.max(np.abs(runners[(p.name, "intra")].run(x)
                                                      - runners[(p.name, "batch")].run(x))))
    bound = {k: {b: r.bind(x) for b, x in feeds.items()} for k, r in runners.items()}
    for calls_of in bound.values():
        for call in calls_of.values():
            for _ in range(3):
                call()
    keys = list(bound)
    times: dict = {k: {b: [] for b in feeds} for k in keys}
    detail = []
    rec_load = loadavg()
    for r in range(rounds):
        order = keys[r % len(keys):] + keys[: r % len(keys)]
        with OtherCPU() as oc:
            for b in feeds:
                for k in (order if r % 2 == 0 else order[::-1]):
                    call = bound[k][b]
                    call()
                    ts = []
                    for _ in range(calls[b]):
                        t0 = time.perf_counter()
                        call()
                        ts.append((time.perf_counter() - t0) * 1e3)
                    times[k][b].append(statistics.median(ts))
        detail.append({"round": r, "seconds": oc.seconds, "other_cpu": oc.value,
                       "disturbed": oc.value > lib.DISTURBED, "loadavg": loadavg()})
        log(f"  round {r}: {oc.seconds:.1f} s, other processes {oc.value:.2f} CPU")
    clean = [not d["disturbed"] for d in detail]
    use = clean if sum(clean) >= 3 else [True] * rounds
    fp32 = paths[0].name

    def med(values):
        return float(statistics.median(v for v, u in zip(values, use) if u))

    def iqr(values):
        v = [x for x, u in zip(values, use) if u]
        q = np.percentile(v, [25, 75])
        return [float(q[0]), float(q[1])]

    rows = []
    for p in paths:
        for b in feeds:
            t = {label: times[(p.name, label)][b] for label, _, _ in CONFIGS}
            f = {label: times[(fp32, label)][b] for label, _, _ in CONFIGS}
            per_round = {
                "batch_gain": [i / s for i, s in zip(t["intra"], t["batch"])],
                "vs_fp32_intra": [a / c for a, c in zip(f["intra"], t["intra"])],
                "vs_fp32_batch": [a / c for a, c in zip(f["batch"], t["batch"])],
                "vs_fp32_1t": [a / c for a, c in zip(f["1 thread"], t["1 thread"])],
                "batch_vs_fp32_best": [min(a, a2) / c for a, a2, c in zip(f["intra"], f["batch"], t["batch"])],
            }
            key, label = _describe(p)
            rows.append({"artifact": p.name, "variant": key, "label": label, "batch": b,
                         "ms": {label: med(v) for label, v in t.items()},
                         **{k: med(v) for k, v in per_round.items()},
                         "iqr": {k: iqr(v) for k, v in per_round.items()},
                         "per_round_ms": t})
    rec = machine_record()
    return {"what": "batch-sharded (--parallel batch) vs intra-op (--parallel intra) execution of every ONNX artifact in one folder (benchmarks/batch_sharding.py)",
            "created": dt.date.today().isoformat(), "folder": str(folder), "threads": threads,
            "settings": {"rounds": rounds, "calls": {str(b): n for b, n in calls.items()}, "spinning": False,
                         "inputs": "clean test windows" if data else "uniform noise",
                         "disturbed_above_cpu": lib.DISTURBED, "configs": [list(c) for c in CONFIGS]},
            "machine": rec["machine"], "cpu_flags": sorted(f for f, on in rec["machine"]["cpu_flags"].items() if on),
            "onnxruntime": rec["versions"]["onnxruntime"], "loadavg_before": rec_load, "loadavg_after": loadavg(),
            "rounds": rounds, "undisturbed_rounds": sum(clean), "rounds_detail": detail,
            "parity_windows": int(max(feeds)), "parity_max_abs_diff": parity,
            "parity_max_abs_diff_all": max(parity.values()),
            # ties the table to the exact files timed (e.g. the main job's artifacts of the same run)
            "sha256": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}, "rows": rows}


def to_markdown(doc: dict) -> str:
    lines = [f"# Batch-sharded (`--parallel batch`) vs intra-op (`--parallel intra`) execution ({doc['created']})", "",
             f"{doc['machine']['cpu_model']}, flags {', '.join(doc['cpu_flags'])}; ONNX Runtime {doc['onnxruntime']}; "
             f"{doc['threads']} threads, spinning off; {doc['undisturbed_rounds']} of {doc['rounds']} rounds undisturbed; "
             f"inputs: {doc['settings']['inputs']}; folder `{doc['folder']}`.", "",
             "ms: median per call over the undisturbed rounds. Ratios are per-round medians (> 1: faster): "
             "batch gain = intra ms / batch ms of the same artifact; × fp32 compares with fp32 in the same mode; "
             "batch × fp32 best divides fp32's faster mode by the artifact's batch mode.", "",
             "| artifact | batch | intra ms | batch ms | 1-thread ms | batch gain | × fp32 (intra) | × fp32 (batch) "
             "| × fp32 (1 thread) | batch × fp32 best |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        lines.append(f"| {r['label']} | {r['batch']} | {r['ms']['intra']:.3f} | {r['ms']['batch']:.3f} | "
                     f"{r['ms']['1 thread']:.3f} | {r['batch_gain']:.2f} | {r['vs_fp32_intra']:.2f} | "
                     f"{r['vs_fp32_batch']:.2f} | {r['vs_fp32_1t']:.2f} | {r['batch_vs_fp32_best']:.2f} |")
    lines += ["", "Largest |batch − intra| output difference per artifact: "
              + ", ".join(f"`{k}` {v:.1e}" for k, v in doc["parity_max_abs_diff"].items()) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="export folder: *.fp32.onnx and the artifacts to compare, with cards")
    ap.add_argument("--data", type=Path, help="dataset for real clean test windows (default: uniform noise)")
    ap.add_argument("--threads", type=int, default=DEFAULTS["threads"])
    ap.add_argument("--rounds", type=int, default=DEFAULTS["rounds"])
    ap.add_argument("--calls", default=DEFAULTS["calls"], help="batch=calls per round, comma-separated")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    doc = run(a.folder, a.data, a.threads, a.rounds, parse_calls(a.calls))
    write_results(a.out, doc, to_markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
