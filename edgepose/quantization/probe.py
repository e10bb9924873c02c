"""A quantization probe: calibrate once, then build and score int8 graphs for any set of groups.

The sensitivity scan (one group int8 at a time) and the accuracy guard (everything int8, groups
put back to float one by one) both ask the same two questions many times — *write the QDQ graph
where exactly these groups are int8* and *what does it score on validation* — so both go through
one :class:`QuantProbe`. Activation ranges are computed once on the calibration windows (our
batch-independent calibrators) and reused by every graph; ONNX Runtime's quantizer writes each
graph from them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import onnx

from edgepose.io import atomic_path
from edgepose.quantization.calibrators import compute_ranges, tensor_batches
from edgepose.quantization.groups import Group, nodes_of, target_op_types
from edgepose.quantization.ptq import check_quantizer, quantize_nodes
from edgepose.quantization.qdq import dequantized_name
from edgepose.quantization.range_search import RangeSearch, apply_scale_factors, search_ranges
from edgepose.quantization.targets import Target
from edgepose.data.split import evenly_spaced
from edgepose.metrics import mpjpe, pck
from edgepose.runtime.session import ort_predict, ort_session


@dataclass
class Score:
    """PCK@20 (fraction) and MPJPE (label units) of one graph on the probe's windows."""

    pck20: float
    mpjpe: float


@dataclass
class QuantProbe:
    """Everything needed to build and score int8 variants of one fp32 graph.

    ``x``/``y``: the scoring windows (clean validation windows); ``sqnr_x``: a few of them on
    which group output tensors are compared with fp32 (SQNR).
    """

    fp32_path: Path
    groups: list[Group]
    target: Target
    calibrator: str
    ranges: dict[str, tuple[float, float]]
    x: np.ndarray
    y: np.ndarray
    torso: tuple[int, int]
    work: Path
    threads: int = 2
    sqnr_windows: int = 32
    recordings: np.ndarray | None = None  # recording of each scoring window (for intervals)
    reference: Score = field(init=False)
    _ref_pred: np.ndarray = field(init=False, repr=False)
    #: searched activation scales (scale initializer → factor) every built graph gets (:meth:`search_ranges`)
    scale_factors: dict[str, float] = field(default_factory=dict)
    _counter: itertools.count = field(default_factory=itertools.count, repr=False)
    _fp32_taps: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_quantizer()
        self.work.mkdir(parents=True, exist_ok=True)
        self._ref_pred = self.predict(self.fp32_path)
        self.reference = self.score_predictions(self._ref_pred)

    @classmethod
    def calibrate(cls, fp32_path: Path, groups: list[Group], target: Target, calibrator: str, calib_windows: np.ndarray,
                  x: np.ndarray, y: np.ndarray, torso: tuple[int, int], work: Path, stats_model: Path | None = None,
                  **kw) -> "QuantProbe":
        """Compute activation ranges on ``calib_windows`` once and build the probe (``stats_model``: see
        :func:`~edgepose.quantization.calibrators.compute_ranges`)."""
        ranges = compute_ranges(fp32_path, calib_windows, calibrator, symmetric=target.symmetric_activations,
                                stats_model=stats_model)
        return cls(fp32_path, groups, target, calibrator, ranges, x, y, torso, work, **kw)

    @property
    def group_names(self) -> list[str]:
        return [g.name for g in self.groups]

    def build(self, int8_groups: Iterable[str], path: Path | None = None) -> Path:
        """Write the QDQ graph in which exactly ``int8_groups`` are int8 (with :attr:`scale_factors` applied);
        returns its path."""
        names = list(int8_groups)
        path = path or self.work / f"probe-{next(self._counter)}.onnx"
        quantize_nodes(self.fp32_path, path, self.ranges, self.target, self.calibrator,
                       nodes=nodes_of(self.groups, names), op_types=sorted(target_op_types(self.target)))
        if self.scale_factors:
            proto = onnx.load(str(path))
            if apply_scale_factors(proto, self.scale_factors, onnx.load(str(self.fp32_path))):
                with atomic_path(path) as tmp:
                    onnx.save(proto, str(tmp))
        return path

    def search_ranges(self, int8_groups: Iterable[str], windows: np.ndarray, parallel: str = "batch") -> RangeSearch:
        """Search the activation ranges of the graph in which ``int8_groups`` are int8 against the network output
        (:func:`~edgepose.quantization.range_search.search_ranges`, on ``windows``) and keep the searched factors:
        every graph built afterwards gets them (:meth:`build`), by the same edit of its scales and biases."""
        self.scale_factors = {}  # searched from the calibrated ranges
        path = self.build(int8_groups)
        try:
            result = search_ranges(self.fp32_path, path, windows, threads=self.threads, parallel=parallel)
        finally:
            path.unlink(missing_ok=True)
        self.scale_factors = dict(result.scales)
        return result

    def graph_bytes(self, int8_groups: Iterable[str]) -> bytes:
        """The serialized graph in which exactly ``int8_groups`` are int8 (none: the fp32 graph itself)."""
        names = sorted(int8_groups)
        if not names:
            return Path(self.fp32_path).read_bytes()
        path = self.build(names)
        try:
            return path.read_bytes()
        finally:
            path.unlink(missing_ok=True)

    def predict(self, path: Path | bytes, x: np.ndarray | None = None) -> np.ndarray:
        return ort_predict(ort_session(path, threads=self.threads), self.x if x is None else x)

    def score_predictions(self, pred: np.ndarray, y: np.ndarray | None = None) -> Score:
        y = self.y if y is None else y
        return Score(pck(pred, y, (0.2,), self.torso)[0.2], mpjpe(pred, y))

    def score(self, path: Path) -> Score:
        return self.score_predictions(self.predict(path))

    def delta(self, s: Score) -> tuple[float, float]:
        """(ΔPCK@20 in pp, ΔMPJPE) of ``s`` against the fp32 graph."""
        return 100.0 * (s.pck20 - self.reference.pck20), s.mpjpe - self.reference.mpjpe

    def delta_interval(self, path: Path, level: float = 0.95) -> tuple[float, float, float]:
        """ΔPCK@20 (pp) of the graph at ``path`` against fp32 with a paired bootstrap interval.

        Resamples whole recordings (``recordings``); without them every window is its own.
        Returns (delta, low, high).
        """
        from edgepose.stats import paired_bootstrap_delta
        from edgepose.metrics import window_pck

        recs = self.recordings if self.recordings is not None else np.arange(len(self.x))
        ci = paired_bootstrap_delta(window_pck(self.predict(path), self.y, 0.2, self.torso),
                                    window_pck(self._ref_pred, self.y, 0.2, self.torso), recs, level=level)
        return ci.delta_pp, ci.low_pp, ci.high_pp

    def sqnr_db(self, quant_path: Path, group: Group) -> float:
        """SQNR (dB) of ``group``'s output tensor in ``quant_path`` against fp32, on a few windows.

        In the int8 graph the tensor downstream nodes read is the dequantized twin when the
        group's output is quantized, else the tensor itself.
        """
        xs = evenly_spaced(self.x, self.sqnr_windows)
        ref = _tap(onnx.load(str(self.fp32_path)), group.output, xs, self.threads)
        q = onnx.load(str(quant_path))
        tensor = dequantized_name(q, group.output)
        got = _tap(q, tensor, xs, self.threads)
        noise = float(np.sum((ref.astype(np.float64) - got) ** 2))
        signal = float(np.sum(ref.astype(np.float64) ** 2))
        if noise == 0.0:
            return float("inf")
        if signal == 0.0:
            return float("-inf")
        return 10.0 * np.log10(signal / noise)


def _tap(proto: onnx.ModelProto, tensor: str, x: np.ndarray, threads: int) -> np.ndarray:
    """Values of an inner tensor on windows ``x`` (the tensor exposed as an extra graph output)."""
    return np.concatenate([b[tensor] for b, _ in tensor_batches(proto, [tensor], x, 64, threads)]).astype(np.float64)


__all__ = ["QuantProbe", "Score"]
