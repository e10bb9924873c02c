"""Trade-off report: tables, plots with the Pareto front and speed ratios, and a verdict per machine and batch."""

from .build import build_report, load_results, verdicts
from .verdict import MAX_DROP_PP, Choice, choose

__all__ = ["MAX_DROP_PP", "Choice", "build_report", "choose", "load_results", "verdicts"]


from .._callable import make_callable as _make_callable  # noqa: E402

_make_callable(__name__)  # ep.report(...) calls edgepose.api.report
