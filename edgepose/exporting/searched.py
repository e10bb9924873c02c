"""``--range-search``: a module recipe's PTQ graph with its activation ranges searched against the output.

The search (:mod:`edgepose.quantization.range_search`) runs the int8 graph over the calibration
windows once per candidate range, so it uses an evenly spaced subset of them
(:data:`RANGE_SEARCH_WINDOWS`); the reference output is the graph the export quantized
(:meth:`~edgepose.exporting.context.ExportContext.int8_source_onnx`). The card's
``recipe.range_search`` records what changed, the output error before and after, the windows and
the time it took.
"""

from __future__ import annotations

from pathlib import Path

from edgepose.data.split import evenly_spaced
from edgepose.exporting.context import ExportContext
from edgepose.quantization.calibration import CalibrationSet
from edgepose.quantization.probe import QuantProbe
from edgepose.quantization.range_search import RangeSearch, search_ranges

#: Calibration windows the range search scores candidates on (evenly spaced over the calibration set).
RANGE_SEARCH_WINDOWS = 256

__all__ = ["RANGE_SEARCH_WINDOWS", "search_probe_ranges", "search_ptq_ranges"]


def search_ptq_ranges(ctx: ExportContext, ptq_path: Path, calib: CalibrationSet) -> dict:
    """Search the activation ranges of the PTQ graph at ``ptq_path`` in place; returns the card entry."""
    req = ctx.req
    windows = evenly_spaced(calib.windows, RANGE_SEARCH_WINDOWS)
    result = search_ranges(ctx.int8_source_onnx(), ptq_path, windows, threads=req.threads or 2,
                           parallel=req.parallel)
    return _entry(ctx, result)


def search_probe_ranges(ctx: ExportContext, probe: QuantProbe, int8_groups: list[str], calib: CalibrationSet) -> dict:
    """Search the ranges of ``probe``'s graph with ``int8_groups`` int8 and keep them in the probe for every graph
    it builds afterwards (:meth:`~edgepose.quantization.probe.QuantProbe.search_ranges`); returns the card entry."""
    windows = evenly_spaced(calib.windows, RANGE_SEARCH_WINDOWS)
    result = probe.search_ranges(int8_groups, windows, parallel=ctx.req.parallel)
    return {**_entry(ctx, result), "searched_on": f"{len(int8_groups)} of {len(probe.groups)} groups int8"}


def _entry(ctx: ExportContext, result: RangeSearch) -> dict:
    ctx.req.log(f"range search: {len(result.factors)} of {result.tensors} activation ranges changed in "
                f"{result.seconds:.0f} s (output MSE {result.mse_before:.3g} → {result.mse_after:.3g})")
    return {"mode": "on", **result.describe()}
