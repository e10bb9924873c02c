"""Benchmark harness: size, latency and locked accuracy of every artifact on every backend."""

from .run import SCHEMA, SCHEMA_VERSION, bench, write_results
from .timing import TimingPlan

__all__ = ["SCHEMA", "SCHEMA_VERSION", "TimingPlan", "bench", "write_results"]
