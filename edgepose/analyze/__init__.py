"""Accuracy analysis of int8 quantization: per-group sensitivity on the validation split.

``analyze(checkpoint, data=None, target="ort-cpu", calib="percentile")`` → :class:`SensitivityResult`
(ranked :class:`GroupRecord` rows; ``.write(out)`` writes JSON, Markdown and a PNG). The accuracy
guard of ``edgepose export --max-drop`` uses the same probe and ranking.
"""

from __future__ import annotations

from .sensitivity import GroupRecord, SensitivityResult, analyze, load_result, measure_groups

__all__ = ["GroupRecord", "SensitivityResult", "analyze", "load_result", "measure_groups"]

from .._callable import make_callable as _make_callable  # noqa: E402

_make_callable(__name__)  # ep.analyze(...) calls edgepose.api.analyze
