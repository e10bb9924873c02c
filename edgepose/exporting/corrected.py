"""``--bias-correction on|checked``: the bias-corrected twin of a module recipe's PTQ graph.

``on`` ships the corrected graph (:mod:`edgepose.quantization.bias_correction`). ``checked`` scores
the plain and the corrected graph on every clean validation window and ships the corrected one
only when its PCK@20 there is higher. Across the shipped zoo the correction helped some models and
recipes and cost others, and validation and test agreed on the sign wherever either interval
excluded zero (docs/quantization.md). The card's ``recipe.bias_correction`` records the mode, what
was corrected, whether the corrected graph ``shipped`` and, for ``checked``, both validation scores,
the paired interval over recordings and the CPU they were scored on.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from edgepose.errors import EdgeposeError
from edgepose.exporting.context import ExportContext
from edgepose.exporting.parity import ort_predict, ort_session
from edgepose.metrics import window_pck
from edgepose.quantization.bias_correction import correct_biases
from edgepose.quantization.calibration import CalibrationSet
from edgepose.runtime.cpu import cpu_summary
from edgepose.stats import paired_bootstrap_delta


def correct_ptq(ctx: ExportContext, plain: Path, corrected: Path, calib: CalibrationSet, mode: str) -> tuple[Path, dict]:
    """Write the corrected twin of ``plain`` at ``corrected``; returns the graph to ship and the card entry."""
    if mode == "checked" and not len(ctx.dataset.indices("val", clean=True, spec=ctx.spec)):
        raise EdgeposeError("--bias-correction checked compares the two graphs on clean validation windows and this "
                            "split has none: use on or off", ctx.dataset.path)
    shutil.copyfile(plain, corrected)
    entry = {"mode": mode, **correct_biases(ctx.int8_source_onnx(), corrected, calib.windows).describe()}
    if mode == "on":
        return corrected, {**entry, "shipped": True}
    check = validation_check(ctx, plain, corrected)
    ships = check["ships"] == "corrected"
    ctx.req.log(f"bias correction: validation PCK@20 {100 * check['plain_pck20']:.2f} % plain, "
                f"{100 * check['corrected_pck20']:.2f} % corrected: ships the {check['ships']} graph")
    return (corrected if ships else plain), {**entry, "shipped": ships, "check": check}


def validation_check(ctx: ExportContext, plain: Path, corrected: Path) -> dict:
    """Both graphs on every clean validation window: PCK@20 of each, the paired interval, the one that ships.

    The corrected graph ships only when its PCK@20 is strictly higher (a tie ships the plain one).
    Scored with ONNX Runtime on this CPU, whose int8 kernels the numbers depend on (``scored_on``).
    """
    ds = ctx.dataset
    idx = ds.indices("val", clean=True, spec=ctx.spec)
    x, y = ds.read(idx)
    threads = ctx.req.threads or 2

    def hits(path: Path) -> np.ndarray:
        return window_pck(ort_predict(ort_session(path, threads=threads), x), y, 0.2, ds.layout.torso)

    h_plain, h_corr = hits(plain), hits(corrected)
    ci = paired_bootstrap_delta(h_corr, h_plain, ds.window_file[idx])
    better = float(h_corr.mean()) > float(h_plain.mean())
    return {"windows": int(len(idx)), "recordings": int(len(np.unique(ds.window_file[idx]))),
            "plain_pck20": float(h_plain.mean()), "corrected_pck20": float(h_corr.mean()),
            "corrected_minus_plain_pp": {"delta": ci.delta_pp, "low": ci.low_pp, "high": ci.high_pp},
            "ships": "corrected" if better else "plain", "threads": threads, "scored_on": cpu_summary(),
            "rule": "the corrected graph ships only when its validation PCK@20 is higher"}


__all__ = ["correct_ptq", "validation_check"]
