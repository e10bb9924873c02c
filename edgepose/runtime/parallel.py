"""How one call uses several cores: split its batch across one-thread workers, or let the runtime split each operator.

ONNX Runtime's CPU provider parallelises *inside* each operator (its intra-op pool). Its x86
``QLinearConv`` splits work between threads only on one kernel path, so most int8 convolutions
of a WiFlow graph run on one core whatever the pool size (docs/int8-threads.md). A batch of
windows has a simpler parallelism: the windows are independent. ``batch`` mode cuts a call's
windows into one contiguous shard per worker and runs the shards at the same time, each on a
one-thread session, so every operator, int8 or not, keeps every core busy. The outputs are the
shards' outputs in order, the same numbers as one call (each window's result does not depend on
its neighbours).

This module is plain Python + numpy: the edge runtime, the bench and the plan's timer share it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Callable, Sequence, TypeVar

from edgepose.runtime.errors import EdgeposeError

T = TypeVar("T")

#: mode → what it does with ``threads`` cores; the first is the default.
PARALLEL_MODES: dict[str, str] = {
    "batch": "a call's windows are cut into one contiguous shard per thread and the shards run at once, each on "
             "one thread (a one-window call runs on one thread)",
    "intra": "one call on the runtime's intra-op pool of that many threads, which splits each operator",
}
DEFAULT_PARALLEL = next(iter(PARALLEL_MODES))


def usable_cpus() -> int:
    """The CPUs this process may run on (respects ``taskset``/cgroup affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_parallel(mode: str) -> str:
    """``mode`` when it is one of :data:`PARALLEL_MODES`, else an error listing them."""
    if mode not in PARALLEL_MODES:
        raise EdgeposeError(f"unknown parallel mode {mode!r}; choose from {', '.join(PARALLEL_MODES)}")
    return mode


def shard_bounds(n: int, workers: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of at most ``workers`` contiguous, non-empty shards covering ``range(n)``.

    Sizes differ by at most one, the larger ones first (37 windows on 2 workers: 19 + 18).
    """
    if n < 0 or workers < 1:
        raise ValueError(f"need n ≥ 0 and workers ≥ 1, got n={n}, workers={workers}")
    k = min(n, workers)
    if k == 0:
        return []
    size, extra = divmod(n, k)
    bounds, start = [], 0
    for i in range(k):
        stop = start + size + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


class ShardPool:
    """Runs a list of zero-argument calls at the same time: the first on the calling thread, the rest
    on ``workers - 1`` pool threads (created once, reused by every call).

    ONNX Runtime and OpenVINO release the GIL while they compute, so the calls use separate cores.
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be ≥ 1, got {workers}")
        self.workers = workers
        self._pool = (ThreadPoolExecutor(workers - 1, thread_name_prefix="edgepose-shard")
                      if workers > 1 else None)

    def run(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """The calls' results in order. At most ``workers`` calls; an exception in any call is raised
        after all of them have finished (none is left running)."""
        if len(calls) > self.workers:
            raise ValueError(f"{len(calls)} calls for {self.workers} workers")
        if len(calls) <= 1 or self._pool is None:
            return [c() for c in calls]
        futures = [self._pool.submit(c) for c in calls[1:]]
        try:
            first = calls[0]()
        finally:
            wait(futures)
        return [first] + [f.result() for f in futures]

    def close(self) -> None:
        """Stop the pool threads (idle threads cost nothing; this is for tidy shutdowns)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)


__all__ = ["DEFAULT_PARALLEL", "PARALLEL_MODES", "ShardPool", "check_parallel", "shard_bounds", "usable_cpus"]
