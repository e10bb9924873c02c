"""Latency measurement: warm-up, then timed runs until a count or a minimum duration is reached."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class TimingPlan:
    """How long to measure: ``warmup`` untimed runs, then at least ``iters`` runs and ``min_seconds``."""

    warmup: int = 10
    iters: int = 50
    min_seconds: float = 2.0
    max_iters: int = 2000


def measure(run: Callable[[], None], sync: Callable[[], None], batch: int, plan: TimingPlan) -> dict:
    """Time ``run`` (followed by ``sync``, which waits for asynchronous devices) per call.

    Returns p50/p90/p99 per batch and per window in milliseconds, throughput and the spread.
    """
    for _ in range(plan.warmup):
        run()
    sync()
    times = []
    start = time.perf_counter()
    while len(times) < plan.max_iters and (len(times) < plan.iters or time.perf_counter() - start < plan.min_seconds):
        t0 = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1e3
    p50, p90, p99 = (float(np.percentile(ms, q)) for q in (50, 90, 99))
    return {
        "batch": batch, "iters": len(ms),
        "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "mean_ms": float(ms.mean()), "min_ms": float(ms.min()),
        "p50_ms_per_window": p50 / batch, "p99_ms_per_window": p99 / batch,
        "throughput_windows_per_s": batch / (p50 / 1e3),
        "iqr_over_median": float((np.percentile(ms, 75) - np.percentile(ms, 25)) / p50),
    }
