"""Golden tolerances derived from the export's own parity catch the weight-range shift of issue 22.

The shift figures come from ``benchmarks/results/isa-numerics-amd-epyc.json`` (wiflow-half, safe
recipe, minmax): the same export with 8-bit and with 7-bit weights, run on one box, differs by the
amount the AVX2 box's artifact differed from the VNNI box's. The golden check must fail a golden set
moved by that much and pass one moved by what a correct box may differ by (the optimised vs
unfused disagreement measured at packaging).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgepose.deployment.golden import PARITY_SHARE, export_parity, tolerance_record
from edgepose.runtime.verify import compare_golden

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "isa-numerics-amd-epyc.json"
#: fallbacks when the results file is absent (values of the committed run, wiflow-half safe minmax)
PARITY = {"mean_abs_error": 0.0088, "max_abs_error": 0.069}
SHIFT = {"mean_abs": 0.0068, "max_abs": 0.115}
#: optimised vs unfused one-thread disagreement measured on 8 golden windows of that artifact
MEASURED = {"mean": 0.0013, "max": 0.0099}


def _figures() -> tuple[dict, dict]:
    if not RESULTS.is_file():
        return PARITY, SHIFT
    row = next(r for r in json.loads(RESULTS.read_text())["rows"] if r["row"] == "safe minmax")
    return row["w8"]["parity_vs_fp32_torch"], row["w8_vs_w7_outputs"]


def _perturb(want: np.ndarray, mean_abs: float, max_abs: float, seed: int = 0) -> np.ndarray:
    """``want`` moved by an error whose mean |·| is ``mean_abs`` and whose largest |·| is ``max_abs``."""
    rng = np.random.default_rng(seed)
    e = rng.laplace(0, 1, want.shape)
    e *= mean_abs / np.abs(e).mean()
    e = np.clip(e, -max_abs, max_abs)
    e *= mean_abs / np.abs(e).mean()
    return want + e


@pytest.fixture()
def golden():
    return np.random.default_rng(1).uniform(0, 1, (8, 15, 2))


def test_int8_tolerance_comes_from_parity():
    parity, _ = _figures()
    tol = tolerance_record("int8", MEASURED["max"], MEASURED["mean"], export_parity({"parity": {"vs_fp32_torch": parity}}))
    assert tol["mean_abs"] >= PARITY_SHARE * parity["mean_abs_error"]
    assert tol["mean_abs"] <= 1.1 * max(PARITY_SHARE * parity["mean_abs_error"], 1.5 * MEASURED["mean"])
    assert tol["max_abs"] < 2e-2 + 1e-12 or tol["max_abs"] <= 1.1 * PARITY_SHARE * parity["max_abs_error"]
    assert "parity" in tol["rule"]


def test_weight_range_shift_fails_and_box_noise_passes(golden):
    parity, shift = _figures()
    tol = tolerance_record("int8", MEASURED["max"], MEASURED["mean"], export_parity({"parity": {"vs_fp32_torch": parity}}))
    assert compare_golden(golden, golden, tol["max_abs"], tol["mean_abs"]).passed
    noise = _perturb(golden, MEASURED["mean"], MEASURED["max"])
    assert compare_golden(noise, golden, tol["max_abs"], tol["mean_abs"]).passed
    moved = _perturb(golden, shift["mean_abs"], shift["max_abs"])
    check = compare_golden(moved, golden, tol["max_abs"], tol["mean_abs"])
    assert not check.passed and "mean abs error" in check.detail
    # even a shift no larger than any golden value's worst case is caught by the mean alone
    moved_small = _perturb(golden, shift["mean_abs"], tol["max_abs"] * 0.9)
    assert not compare_golden(moved_small, golden, tol["max_abs"], tol["mean_abs"]).passed


def test_old_rule_would_have_passed_the_shift(golden):
    """The fixed int8 floor (2e-2 per value, no mean) lets a 7-bit-vs-8-bit shift through when its peak is small."""
    _, shift = _figures()
    old = tolerance_record("int8", MEASURED["max"], MEASURED["mean"], None)
    moved = _perturb(golden, shift["mean_abs"], 0.9 * old["max_abs"])
    assert compare_golden(moved, golden, old["max_abs"], None).passed


def test_without_parity_the_floor_rule_stays():
    for precision, floor in (("fp32", 1e-3), ("fp16", 5e-3), ("int8", 2e-2)):
        tol = tolerance_record(precision, 1e-7, 1e-8, None)
        assert tol["max_abs"] == pytest.approx(floor) and tol["mean_abs"] == pytest.approx(floor / 4, rel=0.05)
    # parity of an fp32 card does not tighten fp32 tolerances
    assert tolerance_record("fp32", 1e-7, 1e-8, {"mean_abs_error": 1e-6, "max_abs_error": 1e-5})["max_abs"] == 1e-3


def test_export_parity_ignores_missing_or_broken_figures():
    assert export_parity(None) is None and export_parity({"parity": {}}) is None
    assert export_parity({"parity": {"vs_fp32_torch": {"mean_abs_error": float("nan"), "max_abs_error": 1}}}) is None
    assert export_parity({"parity": {"vs_fp32_torch": {"mean_abs_error": 0.01, "max_abs_error": 0.1}}})["max_abs_error"] == 0.1
