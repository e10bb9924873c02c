"""Simulate a config's recordings in worker processes, in order, with the sequential result.

Every recording draws from its own seeded streams (:func:`.recording.simulate_motion`), so the
recordings are independent: a worker process computes one recording's joints and channel exactly
as the parent would, and the writer receives them in the recording order. Only the writers' own
sequential streams (which windows get corrupted) stay in the parent. A dataset written with
``workers=1`` and with ``workers=4`` is the same bytes (``tests/data/test_synth_pool.py``).

At most ``2 × workers`` recordings are in flight, so a slow writer (MM-Fi's one ``.mat`` per
frame) never buffers the whole dataset.
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

#: Recordings below which worker processes cost more than they save (starting one takes ~0.2 s,
#: a default recording ~0.4 s).
MIN_RECORDINGS_FOR_WORKERS = 8

_WORKER: dict = {}


def default_workers(n_recordings: int) -> int:
    """Worker processes for ``n_recordings``: the CPUs this process may use (at most 8), or 1 for a
    handful of recordings or when ``EDGEPOSE_SYNTH_WORKERS`` says so (an integer ≥ 1)."""
    env = os.environ.get("EDGEPOSE_SYNTH_WORKERS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"EDGEPOSE_SYNTH_WORKERS must be an integer ≥ 1, got {env!r}") from None
        if n < 1:
            raise ValueError(f"EDGEPOSE_SYNTH_WORKERS must be an integer ≥ 1, got {env!r}")
        return n
    if n_recordings < MIN_RECORDINGS_FOR_WORKERS:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, 8))


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
    ctx = multiprocessing.get_context("spawn")  # no fork of a parent that may hold torch's threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init,
                             initargs=(cfg, room, channel)) as pool:
        pending: deque[Future] = deque()
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
