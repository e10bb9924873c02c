"""The locked metric: PCK@t with a torso normaliser, and MPJPE.

Every accuracy number edgepose reports comes from this module, for torch tensors and numpy
arrays alike. Definitions (fixed; changing them breaks comparability with earlier results):

* per sample, ``d = max(‖gt[a] − gt[b]‖₂, 0.01)`` with ``(a, b)`` the layout's torso pair
  — ``(2, 12)``, right shoulder → left hip, for the WiFlow BODY_25 layout;
* a joint is correct when ``‖pred − gt‖₂ / d ≤ t``; a non-finite prediction is never correct,
  and neither is any joint of a sample whose label makes ``d`` non-finite;
* PCK@t is the mean over all joints of all samples (a global mean, never a mean of batch means);
* MPJPE is the mean 2-D joint distance in the label's units (pixel/1000 for WiFlow, not metres).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from edgepose.errors import EdgeposeError

THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
MIN_TORSO = 0.01
#: The accuracy gate: the largest PCK@20 loss, in percentage points against fp32, that a shipped
#: artifact may show. One number for every decision. Where edgepose *chooses* (the accuracy guard
#: of ``export --max-drop`` and the per-layer precision plan) it is judged on the validation split,
#: so test stays untouched; where edgepose *reports* (the report's verdict, ``benchmarks/summarize.py``)
#: it is judged on test, by the lower end of the 95 % paired interval over test recordings.
ACCURACY_GATE_PP = 0.5


class MetricInputError(EdgeposeError, ValueError):
    """Predictions or labels the metric cannot score (shape, dtype, joint indices).

    A :class:`ValueError` too, for callers that caught the metric's shape errors as such.
    """


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if x.is_complex():
            raise MetricInputError(f"expected real-valued poses, got a {x.dtype} tensor")
        return x.double().numpy()
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise MetricInputError(f"expected an array of poses ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise MetricInputError(f"expected real-valued poses, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _check(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise MetricInputError(f"pred and gt must both be [N, J, 2]; got {pred.shape} and {gt.shape}")


def _check_joints(indices, n_joints: int, what: str) -> None:
    bad = [i for i in indices if not -n_joints <= int(i) < n_joints]
    if bad:
        raise MetricInputError(f"{what} joint indices {bad} are outside the {n_joints} joints of the poses")


def joint_errors(pred, gt, torso: tuple[int, int] = (2, 12)) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint distances ``[N, J]`` (inf where the prediction is not finite) and normalisers ``[N]``.

    A normaliser is NaN where the label makes it non-finite, so every ratio ``dist / d`` of that
    sample is NaN and fails every threshold. Raises :class:`MetricInputError` for unusable input.
    """
    p, g = _as_numpy(pred), _as_numpy(gt)
    _check(p, g)
    _check_joints(torso, p.shape[1], "torso")
    with np.errstate(over="ignore", invalid="ignore"):
        dist = np.linalg.norm(p - g, axis=-1)
        dist = np.where(np.isfinite(dist), dist, np.inf)
        d = np.maximum(np.linalg.norm(g[:, torso[0]] - g[:, torso[1]], axis=-1), MIN_TORSO)
    return dist, np.where(np.isfinite(d), d, np.nan)


def pck(pred, gt, thresholds: Sequence[float] = THRESHOLDS, torso: tuple[int, int] = (2, 12)) -> dict[float, float]:
    """PCK at each threshold, as fractions in [0, 1]."""
    dist, d = joint_errors(pred, gt, torso)
    if dist.size == 0:
        return {float(t): float("nan") for t in thresholds}
    with np.errstate(invalid="ignore"):
        ratio = dist / d[:, None]
    return {float(t): float(np.mean(ratio <= t)) for t in thresholds}


def window_pck(pred, gt, t: float = 0.2, torso: tuple[int, int] = (2, 12)) -> np.ndarray:
    """Per window, the fraction of its joints within ``t`` of the torso size (the locked rule): ``[N]``.

    Its mean is PCK@t; paired per-window values are what the recording bootstrap resamples.
    """
    dist, d = joint_errors(pred, gt, torso)
    with np.errstate(invalid="ignore"):
        return np.mean(dist / d[:, None] <= t, axis=1)


def mpjpe(pred, gt) -> float:
    """Mean 2-D joint distance in the label's units; non-finite predictions make it ``inf``."""
    p, g = _as_numpy(pred), _as_numpy(gt)
    _check(p, g)
    if p.size == 0:
        return float("nan")
    with np.errstate(over="ignore", invalid="ignore"):
        dist = np.linalg.norm(p - g, axis=-1)
    return float(np.mean(np.where(np.isfinite(dist), dist, np.inf)))


@dataclass
class PoseMeter:
    """Exact streaming accumulator for PCK and MPJPE over batches of any size.

    ``subsets`` maps a name (e.g. ``"end_effectors"``) to joint indices scored separately.
    """

    torso: tuple[int, int] = (2, 12)
    thresholds: tuple[float, ...] = THRESHOLDS
    subsets: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _correct: dict[str, np.ndarray] = field(default_factory=dict, init=False)
    _joints: dict[str, int] = field(default_factory=dict, init=False)
    _dist_sum: float = field(default=0.0, init=False)
    _n_samples: int = field(default=0, init=False)

    def update(self, pred, gt) -> None:
        """Add one batch."""
        dist, d = joint_errors(pred, gt, self.torso)
        for name, sel in self.subsets.items():
            _check_joints(sel, dist.shape[1], f"subset {name!r}")
        with np.errstate(invalid="ignore"):
            ratio = dist / d[:, None]
        groups = {"all": slice(None), **{k: list(v) for k, v in self.subsets.items()}}
        for name, sel in groups.items():
            r = ratio[:, sel]
            hits = np.array([np.count_nonzero(r <= t) for t in self.thresholds], dtype=np.int64)
            self._correct[name] = self._correct.get(name, 0) + hits
            self._joints[name] = self._joints.get(name, 0) + r.size
        self._dist_sum += float(np.sum(dist))
        self._n_samples += dist.shape[0]

    @property
    def n_samples(self) -> int:
        return self._n_samples

    def compute(self) -> dict:
        """``{"n": N, "pck": {t: frac}, "mpjpe": float, "<subset>_pck": {t: frac}}``."""
        if not self._n_samples:
            return {"n": 0, "pck": {t: float("nan") for t in self.thresholds}, "mpjpe": float("nan")}
        out: dict = {"n": self._n_samples}
        for name, hits in self._correct.items():
            key = "pck" if name == "all" else f"{name}_pck"
            out[key] = {t: float(h) / self._joints[name] for t, h in zip(self.thresholds, hits)}
        out["mpjpe"] = self._dist_sum / self._joints["all"]
        return out


def pck_at(scores: dict, t: float) -> float:
    """``scores[t]`` for a PCK dict whose keys are floats (fresh) or strings (read back from JSON)."""
    for k, v in scores.items():
        if abs(float(k) - t) < 1e-9:
            return float(v)
    raise KeyError(t)
