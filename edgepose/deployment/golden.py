"""Golden vectors: real clean test windows, what the artifact gave here, and the tolerance a box must meet.

**Tolerance.** A correct box can still differ from the build machine: ONNX Runtime picks other
kernels on other CPUs (AVX2 vs AVX-512/VNNI vs NEON, fused vs unfused int8 convolutions,
different summation orders across threads). The tolerance is the larger of

* a floor per precision, in output units (pixel/1000): fp32 ``1e-3``, fp16 ``5e-3``, int8
  ``2e-2`` — 1, 5 and 20 pixels on the 1000-pixel scale, all well under the PCK@20 radius
  (0.2 × torso, about 0.05 on the synthetic default), and
* four times the disagreement measured here between the fully optimised session and a session
  with every graph optimisation off and one thread (the unfused reference path: for int8 that
  is DequantizeLinear → float op → QuantizeLinear, the largest kernel difference a box can show),

rounded up to two significant digits. A broken copy, a wrong input layout or a mis-built
runtime misses this by orders of magnitude; kernel differences do not.
"""

from __future__ import annotations

import math

import numpy as np

from edgepose.data import SplitSpec
from edgepose.data.base import CSIDataset
from edgepose.data.split import evenly_spaced
from edgepose.errors import EdgeposeError
from edgepose.runtime.session import ort_session

#: Smallest tolerance per precision (pixel/1000).
TOLERANCE_FLOOR = {"fp32": 1e-3, "fp16": 5e-3, "int8": 2e-2}
#: Multiple of the measured optimised-vs-reference disagreement.
TOLERANCE_FACTOR = 4.0


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


def golden_outputs(model: bytes, x: np.ndarray, precision: str) -> tuple[np.ndarray, dict]:
    """The artifact's outputs on ``x`` here (fully optimised session) and the tolerance record."""
    fast = ort_session(model)
    ref = ort_session(model, threads=1, graph_optimization="none")
    y = fast.run(None, {fast.get_inputs()[0].name: x})[0].astype(np.float32)
    y_ref = ref.run(None, {ref.get_inputs()[0].name: x})[0].astype(np.float32)
    if not np.isfinite(y).all():
        raise EdgeposeError("the artifact gives non-finite outputs on clean test windows; not packaging it")
    measured = float(np.abs(y.astype(np.float64) - y_ref).max())
    floor = TOLERANCE_FLOOR.get(precision, TOLERANCE_FLOOR["int8"])
    tol = _round_up(max(floor, TOLERANCE_FACTOR * measured))
    return y, {"max_abs": tol, "floor": floor, "factor": TOLERANCE_FACTOR,
               "measured_optimised_vs_reference": measured, "units": "pixel/1000",
               "rule": "max(floor for the precision, factor x |optimised - unoptimised 1-thread| on the "
                       "golden windows), rounded up; every output value must be within it"}
