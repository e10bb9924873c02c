"""The Markdown of ``benchmarks/bias_correction.py``: present CPU flags only, the gain on corrected rows only."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bias_correction


def _interval(d: float, half: float) -> dict:
    return {"delta_pp": d, "low_pp": d - half, "high_pp": d + half, "half_width_pp": half}


def test_markdown_lists_present_flags_and_the_gain_of_corrected_rows_only():
    rows = [{"recipe": "safe", "bias_correction": False, "vs_fp32": _interval(-1.84, 0.89), "delta_mpjpe": 0.0018},
            {"recipe": "safe", "bias_correction": True, "vs_fp32": _interval(-1.38, 0.57), "delta_mpjpe": 0.0016,
             "vs_plain": _interval(0.46, 0.82)}]
    res = {"model": "wiflow-half", "calibrator": "percentile", "created": "2026-12-07T00:00:00+00:00", "threads": 2,
           "machine": {"cpu_model": "Some CPU", "cpu_flags": {"avx2": True, "avx512_vnni": False, "amx_int8": False}},
           "splits": [{"split": "test", "windows": 293, "recordings": 37, "fp32_pck20": 0.9019, "rows": rows}]}
    md = bias_correction.markdown(res)
    assert "(flags avx2)" in md
    assert "## test: 293 clean windows from 37 recordings, fp32 PCK@20 90.19 %" in md
    plain, corrected = [line for line in md.splitlines() if line.startswith("| safe")]
    assert plain.endswith("| — |") and "| no |" in plain
    assert corrected.endswith("| +0.46 [-0.36, +1.28] |") and "±0.57" in corrected
