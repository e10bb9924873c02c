"""Paired rounds: every artifact's speed as a ratio to fp32 ONNX timed in the same round.

Absolute latencies on a shared machine drift by tens of percent over minutes; two artifacts
measured in the same round (seconds apart) drift together, so their ratio is far steadier than
either time. A round yields, per artifact and batch size, ``p50(fp32 ONNX) / p50(artifact)``
(> 1 means faster than fp32); the bench reports the median over the rounds the probe left
undisturbed and the spread (inter-quartile range and min–max). One artifact is *clearly faster*
than another when its inter-quartile range lies wholly above the other's over at least
:data:`MIN_ROUNDS` undisturbed rounds each — the rule the verdict ships on and the adaptive rounds
(:mod:`.adaptive`) run until.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from edgepose.timing.rounds import MIN_ROUNDS  # re-exported: the verdict's minimum of undisturbed rounds


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
    return summarize_ratios(round_ratios(base_p50, p50), used)


def summarize_ratios(ratios: Sequence[float | None], used: Sequence[bool]) -> dict:
    """:func:`ratio_summary` of per-round ratios already computed (``None`` where a round is missing)."""
    ratios = list(ratios)
    keep = [r for r, u in zip(ratios, used) if u]
    out = spread(keep) if any(x is not None for x in keep) else spread(ratios)
    out["rounds"] = ratios
    if not any(used):
        out["all_rounds_disturbed"] = True
    return out


def clear_of(a: dict, b: dict, lo: str = "q1", hi: str = "q3") -> bool:
    """True when ratio record ``a``'s spread lies wholly above ``b``'s (``a`` is clearly faster)."""
    return a.get("n", 0) > 0 and b.get("n", 0) > 0 and a[lo] > b[hi]


def undisturbed(rec: dict) -> int:
    """Rounds behind a paired ratio record that the probe did not mark as disturbed."""
    return 0 if rec.get("all_rounds_disturbed") else int(rec.get("n", 0))


def clearly_faster(a: dict, b: dict) -> bool:
    """``a``'s ratio spread is wholly above ``b``'s, over at least :data:`MIN_ROUNDS` undisturbed paired
    rounds each (records of single unpaired p50s, marked ``unpaired``, carry their own band)."""
    paired = not (a.get("unpaired") or b.get("unpaired"))
    if paired and min(undisturbed(a), undisturbed(b)) < MIN_ROUNDS:
        return False
    return clear_of(a, b)


def leader_of(records: dict) -> dict:
    """Who leads a set of ratio records (key → record, one batch size) and whether that is decided.

    ``leader``: the highest median; ``runner_up``: the next highest; ``decided``: the leader is
    :func:`clearly_faster` than every other record (a single record is decided); ``rounds``: the
    fewest undisturbed rounds behind any of them.
    """
    keys = sorted((k for k, r in records.items() if r.get("n")), key=lambda k: -records[k]["median"])
    if not keys:
        return {"leader": None, "runner_up": None, "decided": False, "rounds": 0}
    lead = records[keys[0]]
    return {"leader": keys[0], "runner_up": keys[1] if len(keys) > 1 else None,
            "decided": all(clearly_faster(lead, records[k]) for k in keys[1:]),
            "rounds": min(undisturbed(records[k]) for k in keys)}


def speed_records(per_round: Sequence[dict | None], base_rounds: Sequence[dict | None], used: Sequence[bool],
                  batch: str) -> tuple[dict, dict]:
    """One artifact's ``(paired, cross_process)`` ratio records at ``batch``.

    ``per_round[r]`` is the artifact's round record (``latency[batch]`` and, when it was timed in
    alternating blocks with fp32 ONNX in its own process, ``paired_base[batch]``) or None;
    ``base_rounds`` the fp32 ONNX job's. ``paired`` is the in-process ratio when there is one, else
    the cross-process one (the same dict).
    """
    p50 = [(r["latency"][batch]["p50_ms"] if r else None) for r in per_round]
    base_p50 = [(r["latency"][batch]["p50_ms"] if r else None) for r in base_rounds]
    cross = ratio_summary(base_p50, p50, used)
    cross["pairing"] = "fp32 ONNX timed in its own process in the same round"
    cross["base_rounds_p50_ms"] = base_p50
    inproc = [(r["paired_base"][batch]["p50_ms"] if r and r.get("paired_base") else None) for r in per_round]
    if not any(x is not None for x in inproc):
        return cross, cross
    tight = ratio_summary(inproc, p50, used)
    tight["pairing"] = "fp32 ONNX timed in alternating blocks in the same process"
    tight["base_rounds_p50_ms"] = inproc
    return tight, cross
