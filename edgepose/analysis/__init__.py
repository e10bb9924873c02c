"""Accuracy analysis of int8 quantization: per-group sensitivity on the validation split.

``analyze(checkpoint, data=None, target="ort-cpu", calib="percentile")`` → :class:`SensitivityResult`
(ranked :class:`GroupRecord` rows; ``.write(out)`` writes JSON, Markdown and a PNG). The accuracy
guard of ``edgepose export --max-drop`` uses the same probe and ranking.
"""

from __future__ import annotations

from edgepose.analysis.sensitivity import SensitivityResult, analyze, load_result
from edgepose.quantization.sensitivity import GroupRecord, measure_groups

__all__ = ["GroupRecord", "SensitivityResult", "analyze", "load_result", "measure_groups"]
