"""benchmarks/precision_plan.py's table says which layout a plan shipped when its card recorded one."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import precision_plan  # noqa: E402


def test_a_plan_with_a_layout_record_names_the_layout_and_its_timings():
    doc = json.loads((ROOT / "benchmarks/results/precision-plan-amd-epyc-avx512-2t.json").read_text())
    before = precision_plan.to_markdown(doc)
    assert "Layout:" not in before  # made before the table recorded layouts
    with_layout = copy.deepcopy(doc)
    half = next(m for m in with_layout["models"] if m["model"] == "wiflow-half")
    row = next(r for r in half["rows"] if r["row"] == "int8 default (auto)")
    row["plan"]["layout"] = {"searched_in": "tcn-padded", "chosen": "tcn-padded", "why": "paid",
                             "padded_vs_unpadded": {"1": {"speedup": 1.031}, "64": {"speedup": 1.094}}}
    text = precision_plan.to_markdown(with_layout)
    assert "Layout: tcn-padded (searched in tcn-padded; padded vs unpadded b1 1.03×, b64 1.09×)." in text
    layout_lines = [line for line in text.split("\n") if line.startswith("Layout:")]
    assert len(layout_lines) == 1
    assert text.replace(layout_lines[0] + "\n", "") == before  # the one added line, nothing else changed
