"""Simulate a config's recordings in worker processes, in order, with the sequential result.

Every recording draws from its own seeded streams (:func:`.recording.simulate_motion`), so the
recordings are independent: a worker process computes one recording's joints and channel exactly
as the parent would, and the writer receives them in the recording order. Only the writers' own
sequential streams (which windows get corrupted) stay in the parent. A dataset written with
``workers=1`` and with ``workers=4`` is the same bytes (``tests/data/test_synth_pool.py``).

At most ``2 × workers`` recordings are in flight, so a slow writer (MM-Fi's one ``.mat`` per
frame) never buffers the whole dataset.

Workers are *forked*: a forked worker starts in milliseconds with what the parent already imported,
and it never re-runs the caller's ``__main__`` (a spawned one would, so an unguarded script calling
:func:`~edgepose.data.synth.synthesize` would call it again in every worker). Workers run numpy
only, never torch or ONNX Runtime, whose thread pools the parent may hold. Where ``fork`` is not
available (Windows, macOS' default) the recordings are simulated in this process unless
``workers`` asks otherwise, and then in spawned workers.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from edgepose.data.synth.recording import SynthConfig, simulate_motion
from edgepose.data.synth.scene import Room

#: ``channel(joints, room, subject, noise_rng) -> (csi, diagnostics)``: a picklable callable (a
#: module-level function or a ``functools.partial`` of one) that turns one recording's joints into
#: what the layout stores.
Channel = Callable[[np.ndarray, Room, Any, np.random.Generator], tuple[np.ndarray, dict]]

#: Recordings below which worker processes cost more than they save (a default recording takes
#: ~0.4 s on one core).
MIN_RECORDINGS_FOR_WORKERS = 8
#: Most worker processes :func:`default_workers` picks.
MAX_WORKERS = 8

_WORKER: dict = {}


def default_workers(n_recordings: int) -> int:
    """Worker processes for ``n_recordings``: ``EDGEPOSE_SYNTH_WORKERS`` when set (an integer ≥ 1);
    else the CPUs this process may use (at most :data:`MAX_WORKERS` and at most one per recording),
    or 1 below :data:`MIN_RECORDINGS_FOR_WORKERS` recordings or where processes cannot be forked."""
    env = os.environ.get("EDGEPOSE_SYNTH_WORKERS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"EDGEPOSE_SYNTH_WORKERS must be an integer ≥ 1, got {env!r}") from None
        if n < 1:
            raise ValueError(f"EDGEPOSE_SYNTH_WORKERS must be an integer ≥ 1, got {env!r}")
        return n
    if n_recordings < MIN_RECORDINGS_FOR_WORKERS or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, MAX_WORKERS, n_recordings))


def simulate_recordings(cfg: SynthConfig, room: Room, recs: Sequence[tuple[int, int, int]], channel: Channel,
                        workers: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, dict]]:
    """Yield ``(joints, csi, diagnostics)`` of every recording ``(s, a, k)`` of ``recs``, in order.

    ``workers``: processes to compute them in (None: :func:`default_workers`; 1: in this process).
    """
    workers = default_workers(len(recs)) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be ≥ 1, got {workers}")
    if workers == 1 or len(recs) < 2:
        for rec in recs:
            yield _simulate(cfg, room, channel, rec)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(max_workers=min(workers, len(recs)), mp_context=multiprocessing.get_context(method),
                               initializer=_init, initargs=(cfg, room, channel))
    pending: deque[Future] = deque()
    try:
        todo = iter(recs)
        for rec in todo:
            pending.append(pool.submit(_run, rec))
            if len(pending) >= 2 * workers:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(_run, nxt))
            yield result
    finally:  # also when the writer fails or stops early: drop the recordings not yet started
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _simulate(cfg: SynthConfig, room: Room, channel: Channel, rec: tuple[int, int, int]
              ) -> tuple[np.ndarray, np.ndarray, dict]:
    s, a, k = rec
    joints, subject, noise_rng = simulate_motion(cfg, room, s, a, k)
    csi, diag = channel(joints, room, subject, noise_rng)
    return joints, csi, diag


def _init(cfg: SynthConfig, room: Room, channel: Channel) -> None:
    _WORKER.update(cfg=cfg, room=room, channel=channel)


def _run(rec: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, dict]:
    return _simulate(_WORKER["cfg"], _WORKER["room"], _WORKER["channel"], rec)


__all__ = ["Channel", "MIN_RECORDINGS_FOR_WORKERS", "default_workers", "simulate_recordings"]
