"""Trade-off report: tables, plots with the Pareto front and speed ratios, and a verdict per machine and batch."""

from edgepose.benchmarking.results import load_results
from edgepose.reporting.build import build_report, verdicts
from edgepose.reporting.verdict import MAX_DROP_PP, Choice, choose

__all__ = ["MAX_DROP_PP", "Choice", "build_report", "choose", "load_results", "verdicts"]
