"""Paired timing of two whole graphs on this box, with an on-disk cache of every measurement.

:class:`GraphTimer` is the ``measure`` of :func:`edgepose.quantization.planning.search.search`: it builds the
QDQ graph of a configuration (a set of int8 groups), loads it through a runtime adapter, and
times it against another configuration by alternating single calls (A B B A …) for a fixed
time, so both see the same machine state; the medians of the two call-time series are returned.

Every comparison times two pairs of fresh sessions, half its time each: the candidate's session
created first in one pair, the incumbent's in the other, and each side's time is the mean of its two
medians. On the AMD EPYC test box a session created later ran the same graph 1 to 2 % faster at
batch 1 than one created just before it (``benchmarks/search_noise.py``); the search used to keep
its incumbent loaded and load each new candidate after it, which credited every candidate with
that head start, about the size of its 1 % tolerance. With both orders timed, a head start of
either kind cancels out of the ratio.

Measurements are cached per (fp32 graph hash, int8 layout, CPU model and flags, runtime and its
version, threads) — the batch size is part of each entry — so rerunning a search on the same box
replays it without timing, and a different CPU, runtime version or thread count never reuses them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from edgepose.timing.adapters import RuntimeAdapter
from edgepose.runtime.cpu import cpu_flags, cpu_model
from edgepose.runtime.parallel import usable_cpus

#: Bump when the meaning of a cached measurement changes (2: fresh sessions, both creation orders).
CACHE_VERSION = 2


def config_id(config: frozenset) -> str:
    """A short stable id of a set of int8 groups."""
    return hashlib.sha256("\n".join(sorted(config)).encode()).hexdigest()[:16]


def profile_key(fp32_sha256: str, layout: str, adapter: RuntimeAdapter, threads: int,
                parallel: str = "intra") -> dict:
    """What a cached measurement depends on (the batch size is stored with each entry)."""
    flags = sorted(cpu_flags())
    cores = usable_cpus()
    return {"version": CACHE_VERSION, "graph_sha256": fp32_sha256, "layout": layout, "cpu_model": cpu_model(),
            "usable_cores": cores,
            "cpu_flags_sha256": hashlib.sha256(" ".join(flags).encode()).hexdigest()[:16],
            "runtime": adapter.name, "runtime_version": adapter.version(), "threads": int(threads),
            "parallel": parallel}


def cache_dir() -> Path:
    """``$EDGEPOSE_CACHE/latency-profiles`` (default ``~/.cache/edgepose/latency-profiles``)."""
    root = os.environ.get("EDGEPOSE_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "edgepose") / "latency-profiles"


class ProfileCache:
    """Measurements of (candidate, incumbent, batch) for one :func:`profile_key`, kept in a JSON file.

    A search may ask for the same comparison more than once on purpose (re-anchoring against
    fp32); each ask is a fresh measurement. The cache keeps them in order, and a later run gets
    the *k*-th stored measurement for its *k*-th ask, so a rerun replays the earlier search
    exactly; asks beyond what is stored are timed and appended.
    """

    def __init__(self, key: dict, folder: Path | None = None, enabled: bool = True) -> None:
        self.key = key
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        self.path = (folder or cache_dir()) / f"{digest}.json"
        self.enabled = enabled
        self.entries: dict[str, list[list[float]]] = {}
        self._asked: dict[str, int] = {}
        self.hits = 0
        if enabled and self.path.is_file():
            try:
                doc = json.loads(self.path.read_text())
                if doc.get("key") == key:
                    self.entries = {k: [list(m) for m in v] for k, v in doc.get("entries", {}).items()}
            except (OSError, ValueError, TypeError):
                self.entries = {}  # a damaged cache is a cold cache

    @staticmethod
    def _k(cand: frozenset, inc: frozenset, batch: int) -> str:
        return f"{config_id(cand)}|{config_id(inc)}|{batch}"

    def get(self, cand: frozenset, inc: frozenset, batch: int) -> tuple[float, float] | None:
        """The stored measurement for this ask (the k-th ask of a key gets the k-th), if any."""
        k = self._k(cand, inc, batch)
        n = self._asked.get(k, 0)
        self._asked[k] = n + 1
        stored = self.entries.get(k, []) if self.enabled else []
        if n < len(stored):
            self.hits += 1
            return stored[n][0], stored[n][1]
        return None

    def put(self, cand: frozenset, inc: frozenset, batch: int, ms: tuple[float, float]) -> None:
        self.entries.setdefault(self._k(cand, inc, batch), []).append([float(ms[0]), float(ms[1])])

    def save(self) -> None:
        """Write the cache atomically (a failure to write is not an error: the cache is optional)."""
        if not self.enabled:
            return
        from edgepose.io import write_json

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, {"key": self.key, "entries": self.entries})
        except OSError:
            pass


def paired_medians(a: Callable[[], object], b: Callable[[], object], seconds: float, min_pairs: int = 5,
                   warmup: int = 2) -> tuple[float, float]:
    """Median ms per call of ``a`` and ``b``, alternated call by call (A B B A …) for about ``seconds``.

    A thin use of the bench's :func:`~edgepose.timing.rounds.measure_interleaved` with blocks of one call.
    """
    from edgepose.timing.rounds import TimingPlan, measure_interleaved

    plan = TimingPlan(warmup=warmup, iters=min_pairs, min_seconds=seconds / 2, block_seconds=0.0)
    sa, sb = measure_interleaved(a, b, lambda: None, 1, plan)
    return sa["p50_ms"], sb["p50_ms"]


class GraphTimer:
    """``measure(candidate, incumbent)`` for the search: build, load and time two configurations.

    Args:
        build: configuration → serialized ONNX graph (the probe's QDQ writer).
        adapter: the runtime that runs the graphs.
        threads: threads per call (0 = the runtime's default).
        inputs: batch size → input array of that batch.
        seconds: timing per batch size per comparison (both graphs together).
        cache: measurements already taken on this box.
        keep_built: how many serialized graphs to keep, most recently used (building one is the slow
            part; a block round of wiflow-half has about ten candidates; sessions are created afresh for
            every comparison, see the module docstring).
        parallel: how a call uses the threads (:data:`edgepose.runtime.parallel.PARALLEL_MODES`).
    """

    def __init__(self, build: Callable[[frozenset], bytes], adapter: RuntimeAdapter, threads: int,
                 inputs: dict[int, np.ndarray], seconds: float = 0.8, cache: ProfileCache | None = None,
                 keep_built: int = 64, parallel: str = "intra") -> None:
        self.build = build
        self.adapter = adapter
        self.threads = threads
        self.parallel = parallel
        self.inputs = inputs
        self.seconds = seconds
        self.cache = cache
        self.keep_built = keep_built
        self.timed = 0
        self._built: OrderedDict[frozenset, bytes] = OrderedDict()

    def _graph(self, config: frozenset) -> bytes:
        if config in self._built:
            self._built.move_to_end(config)
            return self._built[config]
        graph = self.build(config)
        self._built[config] = graph
        while len(self._built) > self.keep_built:
            self._built.popitem(last=False)
        return graph

    def _calls(self, config: frozenset) -> dict[int, Callable[[], object]]:
        """A fresh session of ``config``'s graph: one call per batch size."""
        prepare = self.adapter.load(self._graph(config), self.threads, self.parallel)
        return {b: prepare(x) for b, x in self.inputs.items()}

    def __call__(self, cand: frozenset, inc: frozenset, fresh: bool = False,
                 seconds: float | None = None) -> dict[int, tuple[float, float]]:
        """Per batch (candidate ms, incumbent ms).

        ``fresh`` times even what the cache holds (and does not store it); ``seconds`` overrides
        the timing length of this comparison.
        """
        out: dict[int, tuple[float, float]] = {}
        todo = []
        for b in self.inputs:
            hit = self.cache.get(cand, inc, b) if self.cache is not None and not fresh else None
            if hit is not None:
                out[b] = hit
            else:
                todo.append(b)
        if todo:
            half = (self.seconds if seconds is None else seconds) / 2
            halves: dict[int, list[tuple[float, float]]] = {b: [] for b in todo}
            for cand_first in (True, False):  # a newer session's head start favours each side once
                if cand_first:
                    ca = self._calls(cand)
                    ci = self._calls(inc)
                else:
                    ci = self._calls(inc)
                    ca = self._calls(cand)
                for b in todo:  # fresh sessions: the default warm-up and pairs per half (with one warm-up pair and
                    # three pairs the incumbent's slower first batch-64 calls made the candidate read faster)
                    halves[b].append(paired_medians(ca[b], ci[b], half))
                del ca, ci
            for b in todo:
                (c1, i1), (c2, i2) = halves[b]
                out[b] = ((c1 + c2) / 2, (i1 + i2) / 2)
                self.timed += 1
                if self.cache is not None and not fresh:
                    self.cache.put(cand, inc, b, out[b])
        return out


def batch_inputs(windows: np.ndarray, batches: Sequence[int]) -> dict[int, np.ndarray]:
    """Real windows stacked to each batch size (repeated when there are fewer than ``b``)."""
    if not len(windows):
        raise ValueError("no windows to time with")
    out = {}
    for b in batches:
        idx = np.arange(b) % len(windows)
        out[int(b)] = np.ascontiguousarray(windows[idx], dtype=np.float32)
    return out


__all__ = ["CACHE_VERSION", "GraphTimer", "ProfileCache", "batch_inputs", "cache_dir", "config_id", "paired_medians",
           "profile_key"]
