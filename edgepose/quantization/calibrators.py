"""Activation-range calibrators for int8 PTQ, behind one factory, independent of batching.

ONNX Runtime's own histogram calibrators stack the per-batch outputs they collect, so a
calibration set whose size is not a multiple of the batch fails, and their ranges depend on how
the windows were batched. Here every statistic is *additive* over windows:

1. one pass records each float tensor's exact min and max (order- and batch-independent);
2. the histogram calibrators make a second pass that counts values into bins whose edges are fixed
   by pass 1, so the histogram is the same however the windows are chunked (bin counts add).

The three calibrators, each defined on those statistics:

``minmax``
    the observed ``[min, max]`` — never clips.
``percentile``
    the ``(100 − p)``-th and ``p``-th percentiles of the signed values (``p`` = 99.999 by default),
    widened to include 0; for symmetric targets the ``p``-th percentile of ``|x|``. Clips the
    outermost ``(100 − p)`` % on each side.
``entropy``
    the clipping threshold ``t`` on ``|x|`` whose 128-level quantization of the clipped
    distribution has the smallest Kullback–Leibler divergence from the unclipped histogram (the
    KL search popularised for int8 inference by NVIDIA's TensorRT calibrator); the range is
    ``[max(min, −t), min(max, t)]``. Clips long, thin tails and leaves compact distributions alone.

The result is an ONNX Runtime ``TensorsData``, written as ONNX Runtime's calibration cache and
handed to ``quantize_static`` (so the QDQ graph itself is still written by ONNX Runtime).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from edgepose.errors import EdgeposeError
from edgepose.runtime.session import ort_session

#: Bins of the histograms the percentile and entropy calibrators read.
HIST_BINS = 2048
#: Quantized levels of the magnitude in the entropy search (int8 magnitude: 7 bits).
ENTROPY_LEVELS = 128
DEFAULT_PERCENTILE = 99.999


@dataclass
class TensorStats:
    """Additive statistics of one tensor over the calibration windows."""

    lo: float = np.inf
    hi: float = -np.inf
    count: int = 0
    signed_hist: np.ndarray | None = None  # HIST_BINS counts over [lo, hi]
    abs_hist: np.ndarray | None = None  # HIST_BINS counts over [0, max(|lo|, |hi|)]

    @property
    def absmax(self) -> float:
        return float(max(abs(self.lo), abs(self.hi)))


@dataclass
class ActivationStats:
    """Statistics of every calibrated tensor, plus how many windows produced them."""

    tensors: dict[str, TensorStats] = field(default_factory=dict)
    windows: int = 0


def float_tensors(proto: onnx.ModelProto) -> list[str]:
    """Names of every float32 activation tensor: the graph inputs and every node output."""
    inferred = onnx.shape_inference.infer_shapes(proto)
    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    inits = {i.name for i in proto.graph.initializer}
    names = [i.name for i in proto.graph.input if i.name not in inits]
    for node in proto.graph.node:
        names.extend(o for o in node.output if o)
    seen: set[str] = set()
    out = []
    for name in names:
        if name not in seen and types.get(name) == onnx.TensorProto.FLOAT:
            seen.add(name)
            out.append(name)
    return out


def _augmented(proto: onnx.ModelProto, names: list[str]) -> bytes:
    """The model with every tensor in ``names`` exposed as a graph output."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    present = {o.name for o in model.graph.output}
    for name in names:
        if name not in present:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return model.SerializeToString()


def tensor_batches(proto: onnx.ModelProto, names: list[str], windows: np.ndarray, chunk: int, threads: int = 0):
    """Yield ``({name: array}, x)`` for consecutive chunks ``x`` of ``windows``: the tensors ``names`` of
    ``proto`` (any inner tensor, exposed as an extra output) on that chunk; ``threads`` as in ``ort_session``."""
    sess = ort_session(_augmented(proto, names), threads=threads)
    input_name = sess.get_inputs()[0].name
    wanted = set(names)
    outputs = [o.name for o in sess.get_outputs() if o.name in wanted]
    for start in range(0, len(windows), chunk):
        x = np.ascontiguousarray(windows[start : start + chunk], dtype=np.float32)
        yield dict(zip(outputs, sess.run(outputs, {input_name: x}))), x


def collect_stats(model_path: Path, windows: np.ndarray, histograms: bool, chunk: int = 64,
                  tensors: list[str] | None = None) -> ActivationStats:
    """Exact min/max (and fixed-edge histograms when ``histograms``) of every float tensor.

    ``chunk`` only changes memory use: min/max are exact and the histogram counts are additive,
    so the statistics do not depend on it.
    """
    if len(windows) < 1:
        raise EdgeposeError("calibration needs at least one window")
    if chunk < 1:
        raise EdgeposeError(f"calibration chunk must be ≥ 1, got {chunk}")
    proto = onnx.load(str(model_path))
    names = tensors if tensors is not None else float_tensors(proto)
    stats = ActivationStats({n: TensorStats() for n in names}, int(len(windows)))
    input_name = proto.graph.input[0].name

    def feed(batch: dict[str, np.ndarray], x: np.ndarray):
        for name in names:
            yield name, (x if name == input_name else batch[name])

    for batch, x in tensor_batches(proto, names, windows, chunk):
        for name, v in feed(batch, x):
            if not v.size:
                continue
            if not np.isfinite(v).all():
                raise EdgeposeError(f"tensor {name!r} holds non-finite values on the calibration windows "
                                    "(is a corrupt window in the calibration set?)", model_path)
            s = stats.tensors[name]
            s.lo = min(s.lo, float(v.min()))
            s.hi = max(s.hi, float(v.max()))
            s.count += int(v.size)
    if not histograms:
        return stats
    for s in stats.tensors.values():
        s.signed_hist = np.zeros(HIST_BINS, np.int64)
        s.abs_hist = np.zeros(HIST_BINS, np.int64)
    for batch, x in tensor_batches(proto, names, windows, chunk):
        for name, v in feed(batch, x):
            s = stats.tensors[name]
            if not v.size or s.count == 0:
                continue
            flat = v.ravel().astype(np.float64)
            if s.hi > s.lo:
                s.signed_hist += np.histogram(flat, HIST_BINS, (s.lo, s.hi))[0]
            if s.absmax > 0:
                s.abs_hist += np.histogram(np.abs(flat), HIST_BINS, (0.0, s.absmax))[0]
    return stats


def _quantile(hist: np.ndarray, lo: float, hi: float, q: float) -> float:
    """The value below which a fraction ``q`` of the histogram's mass lies (upper bin edge)."""
    cdf = np.cumsum(hist, dtype=np.float64)
    if cdf[-1] <= 0:
        return hi
    i = int(np.searchsorted(cdf, q * cdf[-1], side="left"))
    i = min(i, len(hist) - 1)
    return lo + (hi - lo) * (i + 1) / len(hist)


def _minmax_range(s: TensorStats, symmetric: bool, **_) -> tuple[float, float]:
    if symmetric:
        return -s.absmax, s.absmax
    return s.lo, s.hi


def _percentile_range(s: TensorStats, symmetric: bool, percentile: float = DEFAULT_PERCENTILE,
                      **_) -> tuple[float, float]:
    q = percentile / 100.0
    if symmetric:
        t = _quantile(s.abs_hist, 0.0, s.absmax, q) if s.absmax > 0 else 0.0
        return -t, t
    if s.hi <= s.lo:
        return min(s.lo, 0.0), max(s.hi, 0.0)
    cdf = np.cumsum(s.signed_hist, dtype=np.float64)
    below = int(np.searchsorted(cdf, (1 - q) * cdf[-1], side="right"))  # leading bins inside the low tail
    low = s.lo + (s.hi - s.lo) * below / HIST_BINS
    high = _quantile(s.signed_hist, s.lo, s.hi, q)
    return min(low, 0.0), max(high, 0.0)


def entropy_threshold(hist: np.ndarray, absmax: float, levels: int = ENTROPY_LEVELS, stride: int = 8) -> float:
    """The |x| clipping threshold minimising KL(P‖Q) between the clipped and the quantized histogram.

    For each candidate bin count ``i`` (from ``levels`` to all bins, every ``stride``): ``P`` is the
    first ``i`` bins with the mass beyond folded into bin ``i − 1``; ``Q`` merges those ``i`` bins
    into ``levels`` groups and spreads each group's mass evenly over its non-empty bins.
    """
    hist = hist.astype(np.float64)
    n = len(hist)
    if hist.sum() <= 0 or absmax <= 0:
        return float(absmax)
    best_kl, best_i = np.inf, n
    for i in range(levels, n + 1, stride):
        p = hist[:i].copy()
        p[-1] += hist[i:].sum()
        nonzero = p > 0
        group = (np.arange(i) * levels) // i
        q_sum = np.bincount(group, weights=hist[:i], minlength=levels)
        q_cnt = np.bincount(group, weights=(hist[:i] > 0).astype(np.float64), minlength=levels)
        q = np.where(nonzero, q_sum[group] / np.maximum(q_cnt[group], 1), 0.0)
        ps, qs = p.sum(), q.sum()
        if qs <= 0:
            continue
        pn, qn = p / ps, q / qs
        mask = nonzero & (qn > 0)
        if (nonzero & (qn == 0)).any():
            kl = np.inf
        else:
            kl = float(np.sum(pn[mask] * np.log(pn[mask] / qn[mask])))
        if kl < best_kl:
            best_kl, best_i = kl, i
    return float(absmax * best_i / n)


def _entropy_range(s: TensorStats, symmetric: bool, **_) -> tuple[float, float]:
    t = entropy_threshold(s.abs_hist, s.absmax) if s.absmax > 0 else 0.0
    if symmetric:
        return -t, t
    return max(s.lo, -t), min(s.hi, t)


@dataclass(frozen=True)
class Calibrator:
    """One calibration method: whether it needs histograms and how it turns stats into a range."""

    name: str
    needs_histograms: bool
    range_fn: Callable[..., tuple[float, float]]
    description: str


#: name → calibrator (one factory, as in ONNX Runtime's ``create_calibrator``).
CALIBRATORS: dict[str, Calibrator] = {
    "minmax": Calibrator("minmax", False, _minmax_range, "observed [min, max]; never clips"),
    "percentile": Calibrator("percentile", True, _percentile_range,
                             f"{DEFAULT_PERCENTILE}th-percentile tails on each side (|x| when symmetric)"),
    "entropy": Calibrator("entropy", True, _entropy_range,
                          "KL-divergence-optimal |x| threshold over a 2048-bin histogram, 128 levels"),
}


def get_calibrator(name: str) -> Calibrator:
    """The calibrator registered under ``name``."""
    if name not in CALIBRATORS:
        raise EdgeposeError(f"unknown calibrator {name!r}; choose from {', '.join(CALIBRATORS)}")
    return CALIBRATORS[name]


def compute_ranges(model_path: Path, windows: np.ndarray, calibrator: str, symmetric: bool = False,
                   chunk: int = 64, percentile: float = DEFAULT_PERCENTILE,
                   stats_model: Path | None = None) -> dict[str, tuple[float, float]]:
    """Tensor name → ``(low, high)`` activation range for ``calibrator`` on ``windows``.

    ``stats_model``: collect the statistics on this graph instead of ``model_path``'s. It must compute
    the same tensors under the same names — the unpadded graph of a channel-padded one
    (:mod:`edgepose.models.padding`), whose always-zero channels would otherwise shift percentile
    and entropy ranges, so that padding changes no range.
    """
    cal = get_calibrator(calibrator)
    if stats_model is not None:
        _check_same_tensors(model_path, stats_model)
    stats = collect_stats(stats_model or model_path, windows, cal.needs_histograms, chunk)
    return {name: tuple(float(v) for v in cal.range_fn(s, symmetric, percentile=percentile))
            for name, s in stats.tensors.items() if s.count}


def _check_same_tensors(model_path: Path, stats_model: Path) -> None:
    """Refuse statistics from a graph whose node outputs are not named as ``model_path``'s."""
    import onnx

    names = [{o for n in onnx.load(str(p)).graph.node for o in n.output} for p in (model_path, stats_model)]
    if names[0] != names[1]:
        diff = sorted(names[0] ^ names[1])
        raise EdgeposeError(f"calibration statistics from {stats_model.name} do not fit: {len(diff)} tensor name(s) "
                            f"differ (e.g. {diff[:3]})", model_path)
