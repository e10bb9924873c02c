"""Per-operator time of ONNX Runtime CPU runs: where an fp32 or int8 graph spends its time.

Runs each given ONNX file with ORT's profiler at one batch size and sums kernel time by op type
(the fused kernel names ORT actually ran, e.g. QLinearConv, FusedConv, QuantizeLinear).

Sessions are made with the runtime's settings (``edgepose.runtime.session.ort_session``): full
graph optimisation, one inter-op thread and intra-op spinning **off**, so a profile shows what
``edgepose`` runs. Profiles taken with ONNX Runtime's default, spinning on (as issue 22's first
profiles were), show a larger int8 ``Transpose`` time at 2 threads than the runtime sees (idle
pool threads busy-wait between the thousands of tiny thread-pool dispatches of the attention's
int8 Transposes; see ``docs/int8-threads.md``). ``--spinning`` reproduces such a profile.

    python benchmarks/ort_profile.py runs/default/artifacts/*.onnx --batch 64 \
        --out benchmarks/results/ort_profile.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgepose.io import write_json
from edgepose.runtime.cpu import cpu_summary


def profile(path: Path, batch: int, runs: int, threads: int, spinning: bool = False) -> dict:
    so = ort.SessionOptions()
    so.enable_profiling = True
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    # as edgepose.runtime.session.ort_session(..., spinning=False) makes them
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    with tempfile.TemporaryDirectory() as tmp:
        so.profile_file_prefix = os.path.join(tmp, "prof")
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        x = np.random.default_rng(0).uniform(0, 1, (batch, *inp.shape[1:])).astype(np.float32)
        for _ in range(3):
            sess.run(None, {inp.name: x})
        for _ in range(runs):
            sess.run(None, {inp.name: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    by_op: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e.get("args", {}).get("op_name", "?")
            by_op[op] += e["dur"] / 1e3 / (runs + 3)
            count[op] += 1
    total = sum(by_op.values())
    ops = sorted(by_op.items(), key=lambda kv: -kv[1])
    return {"file": path.name, "batch": batch, "threads": threads, "intra_op_spinning": spinning,
            "onnxruntime": ort.__version__, "machine": cpu_summary(), "loadavg": os.getloadavg(),
            "kernel_ms_per_run": total,
            "ops": [{"op": k, "ms_per_run": v, "share": v / total, "nodes": count[k] // (runs + 3)} for k, v in ops]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("onnx", nargs="+", type=Path)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--spinning", action="store_true",
                    help="let idle intra-op threads spin (ONNX Runtime's default; not what edgepose runs)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    res = [profile(p, a.batch, a.runs, a.threads, a.spinning) for p in a.onnx]
    write_json(a.out, res)
    for r in res:
        print(f"{r['file']}: {r['kernel_ms_per_run']:.1f} ms kernel time per run at batch {r['batch']}")
        for o in r["ops"][:8]:
            print(f"   {o['op']:24s} {o['ms_per_run']:8.2f} ms  {100 * o['share']:5.1f} %  ({o['nodes']} nodes)")


if __name__ == "__main__":
    main()
