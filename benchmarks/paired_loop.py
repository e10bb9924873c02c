"""The simplest paired speed measurement: ONNX Runtime sessions alternated in one process.

The cross-check for ``edgepose bench``'s paired ratios. All sessions are created up front in this
process; each round times every session for a fixed number of calls at each batch size (order
reversed every other round), and the round's ratio is ``median(first file) / median(file)`` —
> 1 means faster than the first file (the fp32 export). Reported: per-round medians and ratios,
and the median ratio with its inter-quartile range over the rounds. Sessions are built here with
plain ONNX Runtime calls (not edgepose's helpers), so the loop is independent of the harness;
``--spinning`` and ``--opt-level`` measure those session options as levers.

    python benchmarks/paired_loop.py fp32.onnx int8.onnx [more.onnx …] --threads 2 --rounds 5 \
        --calls 1=200,64=10 --data DIR --out benchmarks/results/paired_loop.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import OPT_LEVELS, parse_calls, run_paired

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("onnx", nargs="+", type=Path, help="The first file is the baseline (fp32).")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", default="1=200,64=10", help="batch=calls per round, comma-separated")
    ap.add_argument("--spinning", action="store_true", help="let idle ORT threads busy-wait (default: off)")
    ap.add_argument("--data", type=Path, help="dataset for real test windows (default: uniform noise)")
    ap.add_argument("--opt-level", choices=sorted(OPT_LEVELS), default="all", help="graph optimisation level")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    res = run_paired(a.onnx, a.threads, a.rounds, parse_calls(a.calls), a.spinning, a.data, opt_level=a.opt_level)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2) + "\n")
    for name, per_b in res["speed_vs_baseline"].items():
        print(f"{name:60s} " + "  ".join(f"b{b} {s['median']:.3f}× ({s['q1']:.3f}–{s['q3']:.3f})"
                                          for b, s in per_b.items()))


if __name__ == "__main__":
    main()
