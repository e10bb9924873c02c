"""The bench results format: a schema-versioned JSON document with a flat CSV beside it.

:mod:`edgepose.benchmarking.run` writes it, :mod:`edgepose.reporting` and the deployment bundle read
it; this module is all either side needs (no runner imported to read a file).
"""

from __future__ import annotations

import csv
from pathlib import Path

from edgepose.errors import EdgeposeError
from edgepose.io import atomic_path, read_json, write_json
from edgepose.metrics import pck_at

SCHEMA = "edgepose-bench"
#: 2: paired rounds (``speed_vs_fp32_onnx``), probe record, ΔPCK@20 CI, MACs and peak; v1 keys kept.
SCHEMA_VERSION = 2


def load_results(paths: list[Path]) -> list[dict]:
    """Read bench results files; anything else is refused with the file named."""
    docs = []
    for p in paths:
        doc = read_json(p)
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise EdgeposeError(f"not an edgepose bench results file (schema {doc.get('schema') if isinstance(doc, dict) else None!r})", p)
        doc["_source"] = str(p)
        docs.append(doc)
    return docs


def row_line(row: dict) -> str:
    """One log line for a results row: size, p50 per batch with its ratio to fp32, PCK@20 and its CI."""
    bits = []
    for b, lat in row["latency"].items():
        sr = row.get("speed_vs_fp32_onnx", {}).get(b, {})
        ratio = f" ({sr['median']:.2f}× fp32)" if sr.get("n") else ""
        bits.append(f"b{b} p50 {lat['p50_ms']:.2f} ms{ratio}")
    acc = ""
    if "accuracy" in row:
        acc = f"  PCK@20 {100 * pck_at(row['accuracy']['clean']['pck'], 0.2):.2f}%"
        ci = row.get("delta_pck20_ci")
        if ci:
            acc += f" (Δ {ci['delta_pp']:+.2f} pp, CI [{ci['low_pp']:+.2f}, {ci['high_pp']:+.2f}])"
    return f"bench {row['label']:34s} on {row['backend']:10s} {row['size_mb']:6.2f} MB  {'  '.join(bits)}{acc}"


def write_results(results: dict, out: Path) -> tuple[Path, Path]:
    """Write the JSON document and a flat CSV beside it (one line per row and batch size)."""
    write_json(out, results)
    csv_path = out.with_suffix(".csv")
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["artifact", "label", "backend", "size_mb", "batch", "p50_ms", "p90_ms", "p99_ms",
                    "throughput_wps", "pck10", "pck20", "pck30", "pck40", "pck50", "mpjpe", "full_pck20",
                    "speed_vs_fp32_median", "speed_vs_fp32_q1", "speed_vs_fp32_q3", "gmacs_per_s",
                    "fraction_of_peak", "delta_pck20_pp", "delta_pck20_ci_low", "delta_pck20_ci_high"])
        nan = float("nan")
        for r in results["rows"]:
            acc = r.get("accuracy", {})
            pck = acc.get("clean", {}).get("pck", {})
            ci = r.get("delta_pck20_ci", {})
            for b, lat in r["latency"].items():
                sr = r.get("speed_vs_fp32_onnx", {}).get(b, {})
                comp = r.get("compute", {}).get("by_batch", {}).get(b, {})
                w.writerow([r["artifact"], r["label"], r["backend"], f"{r['size_mb']:.4f}", b,
                            f"{lat['p50_ms']:.4f}", f"{lat['p90_ms']:.4f}", f"{lat['p99_ms']:.4f}",
                            f"{lat['throughput_windows_per_s']:.1f}",
                            *[f"{_get_pck(pck, t):.4f}" for t in (0.1, 0.2, 0.3, 0.4, 0.5)],
                            f"{acc.get('clean', {}).get('mpjpe', nan):.5f}",
                            f"{_get_pck(acc.get('full', {}).get('pck', {}), 0.2):.4f}",
                            *[f"{sr.get(k, nan):.4f}" for k in ("median", "q1", "q3")],
                            f"{comp.get('gmacs_per_s', nan):.3f}", f"{comp.get('fraction_of_peak', nan):.4f}",
                            *[f"{ci.get(k, nan):.3f}" for k in ("delta_pp", "low_pp", "high_pp")]])
    return out, csv_path


def _get_pck(scores: dict, t: float) -> float:
    try:
        return pck_at(scores, t)
    except KeyError:
        return float("nan")


__all__ = ["SCHEMA", "SCHEMA_VERSION", "load_results", "row_line", "write_results"]
