"""Trade-off report: tables, plots with the Pareto front, and a verdict per machine and batch."""

from .build import build_report, load_results

__all__ = ["build_report", "load_results"]
