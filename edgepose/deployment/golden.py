"""Golden vectors: real clean test windows, what the artifact gave here, and the tolerance a box must meet.

**Tolerance.** A correct box can still differ from the build machine: ONNX Runtime picks other
kernels on other CPUs (AVX2 vs AVX-512/VNNI vs NEON, fused vs unfused int8 convolutions,
different summation orders across threads). Every output value must be within ``max_abs`` and the
mean |error| over all outputs within ``mean_abs``.

*fp32, fp16, and int8 without parity figures* (the old rule, kept): ``max_abs`` is the larger of a
floor per precision in output units (pixel/1000: fp32 ``1e-3``, fp16 ``5e-3``, int8 ``2e-2``) and
four times the disagreement measured here between the fully optimised session and a session with
every graph optimisation off and one thread; ``mean_abs`` the same rule on the mean.

*int8 with the export's parity* (the card's ``parity.vs_fp32_torch``: how far quantization moved
the outputs from the fp32 torch model, mean and max |Δ|): a box whose int8 kernels move the outputs
by a sizeable share of the export's own quantization error does not run the artifact that was
scored. ``max_abs`` and ``mean_abs`` are :data:`PARITY_SHARE` of the parity max and mean, but
never below :data:`REFERENCE_MARGIN` times the optimised-vs-unfused disagreement measured here
(the unfused DequantizeLinear → float op → QuantizeLinear path is a correct way to run the graph;
thread count moves int8 outputs not at all). On ``wiflow-half`` the 8-bit- vs 7-bit-weight shift of
issue 22 is a mean |Δ| of several times this tolerance (``benchmarks/results/isa-numerics-*.json``).

Both are rounded up to two significant digits. A broken copy, a wrong input layout or a mis-built
runtime misses them by orders of magnitude.
"""

from __future__ import annotations

import math

import numpy as np

from edgepose.data import SplitSpec
from edgepose.data.base import CSIDataset
from edgepose.data.split import evenly_spaced
from edgepose.errors import EdgeposeError
from edgepose.runtime.session import ort_session

#: Smallest tolerance per precision (pixel/1000) without parity figures.
TOLERANCE_FLOOR = {"fp32": 1e-3, "fp16": 5e-3, "int8": 2e-2}
#: Multiple of the measured optimised-vs-reference disagreement (the old rule).
TOLERANCE_FACTOR = 4.0
#: int8 with parity: the share of the export's own quantization error (vs fp32 torch) a box may add.
PARITY_SHARE = 0.25
#: int8 with parity: the tolerance never goes below this multiple of the optimised-vs-unfused disagreement.
REFERENCE_MARGIN = 1.5


def golden_windows(ds: CSIDataset, spec: SplitSpec, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` clean test windows evenly spaced over the test split, and their indices."""
    idx = ds.indices("test", clean=True, spec=spec)
    if not len(idx):
        raise EdgeposeError("the test split has no clean windows for golden vectors", ds.path)
    pick = np.unique(evenly_spaced(idx, count))
    x, _ = ds.read(pick)
    return np.ascontiguousarray(x, dtype=np.float32), pick


def _round_up(value: float, digits: int = 2) -> float:
    if value <= 0:
        return value
    exp = math.floor(math.log10(value)) - digits + 1
    return math.ceil(value / 10**exp) * 10**exp


def export_parity(card: dict | None) -> dict | None:
    """The export card's ``parity.vs_fp32_torch`` with finite mean and max |Δ|, else ``None``."""
    par = ((card or {}).get("parity") or {}).get("vs_fp32_torch") or {}
    try:
        mean, peak = float(par["mean_abs_error"]), float(par["max_abs_error"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(mean) and math.isfinite(peak) and mean > 0 and peak > 0):
        return None
    return {"mean_abs_error": mean, "max_abs_error": peak, "windows": par.get("windows")}


def tolerance_record(precision: str, measured_max: float, measured_mean: float, parity: dict | None = None) -> dict:
    """The golden tolerance for an artifact of ``precision`` (see the module docstring).

    ``measured_*``: |fully optimised − unoptimised one-thread| on the golden windows here;
    ``parity``: :func:`export_parity` of the artifact's card (used for int8 only).
    """
    base = {"floor": TOLERANCE_FLOOR.get(precision, TOLERANCE_FLOOR["int8"]), "factor": TOLERANCE_FACTOR,
            "measured_optimised_vs_reference": measured_max, "measured_mean_optimised_vs_reference": measured_mean,
            "units": "pixel/1000"}
    if precision == "int8" and parity:
        max_tol = _round_up(max(PARITY_SHARE * parity["max_abs_error"], REFERENCE_MARGIN * measured_max))
        mean_tol = _round_up(max(PARITY_SHARE * parity["mean_abs_error"], REFERENCE_MARGIN * measured_mean))
        return {**base, "max_abs": max_tol, "mean_abs": mean_tol, "parity_share": PARITY_SHARE,
                "reference_margin": REFERENCE_MARGIN, "parity_vs_fp32_torch": parity,
                "rule": "int8 with the export's parity: max(share x the card's parity |artifact - fp32 torch| "
                        "(max and mean), margin x |optimised - unoptimised 1-thread| here), rounded up; every "
                        "output value within max_abs and the mean |error| within mean_abs"}
    floor = base["floor"]
    return {**base, "max_abs": _round_up(max(floor, TOLERANCE_FACTOR * measured_max)),
            "mean_abs": _round_up(max(floor / 4, TOLERANCE_FACTOR * measured_mean)),
            "rule": "max(floor for the precision, factor x |optimised - unoptimised 1-thread| on the "
                    "golden windows), rounded up; every output value must be within max_abs (the mean "
                    "|error| within mean_abs, a quarter of the floor or factor x the measured mean)"}


def golden_outputs(model: bytes, x: np.ndarray, precision: str, card: dict | None = None) -> tuple[np.ndarray, dict]:
    """The artifact's outputs on ``x`` here (fully optimised session) and the tolerance record.

    ``card``: the artifact's export card; for int8 its parity figures set the tolerance.
    """
    fast = ort_session(model)
    ref = ort_session(model, threads=1, graph_optimization="none")
    y = fast.run(None, {fast.get_inputs()[0].name: x})[0].astype(np.float32)
    y_ref = ref.run(None, {ref.get_inputs()[0].name: x})[0].astype(np.float32)
    if not np.isfinite(y).all():
        raise EdgeposeError("the artifact gives non-finite outputs on clean test windows; not packaging it")
    diff = np.abs(y.astype(np.float64) - y_ref)
    return y, tolerance_record(precision, float(diff.max()), float(diff.mean()), export_parity(card))
