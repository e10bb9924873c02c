"""Latency measurement: warm-up, then timed runs until a count or a minimum duration is reached.

:func:`measure` times one callable; :func:`measure_interleaved` times two (an artifact and the fp32
baseline) in alternating short blocks, so both see the same machine and their ratio cancels what
other processes do to the box.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


#: Seconds of paired rounds ``edgepose bench`` and ``edgepose run`` may spend by default (the adaptive
#: rounds of :mod:`edgepose.benchmarking.adaptive`). The README main job (8 pairs at batch 1 and 64,
#: 2 threads) took 7.1 min with 5 fixed rounds on the 2-core build box — roughly 50 s a round and 3 min
#: outside the bench — so 7 min of rounds (about 8) is meant to keep it within 15 min.
DEFAULT_TIME_BUDGET_S = 420.0

#: Undisturbed paired rounds a candidate needs before its speed can be called clearly different
#: (the inter-quartile range of one or two rounds is no spread); the verdict's rule, re-exported by
#: :mod:`edgepose.benchmarking.paired`, kept here so that light modules (the pipeline's defaults,
#: the CLI) can read it without loading the runtimes.
MIN_ROUNDS = 3


@dataclass(frozen=True)
class TimingPlan:
    """How long to measure: ``warmup`` untimed runs, then at least ``iters`` runs and ``min_seconds``."""

    warmup: int = 10
    iters: int = 50
    min_seconds: float = 2.0
    max_iters: int = 2000
    block_seconds: float = 0.05  # interleaved timing: length of one block of calls of one callable


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
    return _stats(times, batch)


def measure_interleaved(run: Callable[[], None], base: Callable[[], None], sync: Callable[[], None], batch: int,
                        plan: TimingPlan) -> tuple[dict, dict]:
    """Time ``run`` and ``base`` in alternating blocks (A B B A A B …) of about ``plan.block_seconds``.

    Each gets at least ``plan.iters`` calls and the pair ``2 × plan.min_seconds``; returns the
    statistics of ``run`` and of ``base`` (the caller's ratio is ``base p50 / run p50``).
    """
    for _ in range(plan.warmup):
        run()
        base()
    sync()
    t0 = time.perf_counter()
    run()
    sync()
    block = max(1, int(plan.block_seconds / max(time.perf_counter() - t0, 1e-6)))
    times: tuple[list[float], list[float]] = ([], [])
    fns = (run, base)
    start = time.perf_counter()
    k = 0
    while (min(len(times[0]), len(times[1])) < plan.iters or time.perf_counter() - start < 2 * plan.min_seconds) \
            and len(times[0]) < plan.max_iters:
        which = (0, 1, 1, 0)[k % 4]  # A B B A: each side leads and follows equally often
        for _ in range(block):
            t = time.perf_counter()
            fns[which]()
            sync()
            times[which].append(time.perf_counter() - t)
        k += 1
    return _stats(times[0], batch), _stats(times[1], batch)


def _stats(times: list[float], batch: int) -> dict:
    ms = np.asarray(times) * 1e3
    p50, p90, p99 = (float(np.percentile(ms, q)) for q in (50, 90, 99))
    return {
        "batch": batch, "iters": len(ms),
        "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "mean_ms": float(ms.mean()), "min_ms": float(ms.min()),
        "p50_ms_per_window": p50 / batch, "p99_ms_per_window": p99 / batch,
        "throughput_windows_per_s": batch / (p50 / 1e3),
        "iqr_over_median": float((np.percentile(ms, 75) - np.percentile(ms, 25)) / p50),
    }
