"""Paired rounds: every artifact's speed as a ratio to fp32 ONNX timed in the same round.

Absolute latencies on a shared machine drift by tens of percent over minutes; two artifacts
measured in the same round (seconds apart) drift together, so their ratio is far steadier than
either time. A round yields, per artifact and batch size, ``p50(fp32 ONNX) / p50(artifact)``
(> 1 means faster than fp32); the bench reports the median over the rounds the probe left
undisturbed and the spread (inter-quartile range and min–max).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def spread(values: Sequence[float]) -> dict:
    """Median, quartiles, min, max and count of ``values`` (``None`` entries ignored)."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if not len(v):
        return {"n": 0}
    q1, med, q3 = (float(np.percentile(v, q)) for q in (25, 50, 75))
    return {"median": med, "q1": q1, "q3": q3, "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}


def round_ratios(base_p50: Sequence[float | None], p50: Sequence[float | None]) -> list[float | None]:
    """Per round ``base / p50`` (speed relative to the baseline); ``None`` where either is missing."""
    return [b / p if b and p else None for b, p in zip(base_p50, p50)]


def ratio_summary(base_p50: Sequence[float | None], p50: Sequence[float | None], used: Sequence[bool]) -> dict:
    """The speed-ratio record of one artifact at one batch size.

    ``used[r]`` is False for rounds the probe marked as disturbed; they stay in ``rounds`` (for
    inspection) but not in the statistics. When every round was disturbed, all are used and
    ``all_rounds_disturbed`` says so.
    """
    ratios = round_ratios(base_p50, p50)
    keep = [r for r, u in zip(ratios, used) if u]
    out = spread(keep) if any(x is not None for x in keep) else spread(ratios)
    out["rounds"] = ratios
    if not any(used):
        out["all_rounds_disturbed"] = True
    return out


def clear_of(a: dict, b: dict, lo: str = "q1", hi: str = "q3") -> bool:
    """True when ratio record ``a``'s spread lies wholly above ``b``'s (``a`` is clearly faster)."""
    return a.get("n", 0) > 0 and b.get("n", 0) > 0 and a[lo] > b[hi]
