"""Benchmark harness: size, latency (paired rounds), locked accuracy and distance to peak of every artifact.

:func:`~edgepose.benchmarking.run.bench` runs the rounds; :mod:`.results` is the results format
that reports and bundles read.
"""

from edgepose.benchmarking.peak import Peak, machine_peak
from edgepose.benchmarking.results import SCHEMA, SCHEMA_VERSION, load_results, write_results
from edgepose.benchmarking.run import DEFAULT_ROUNDS, bench
from edgepose.stats import DeltaCI, paired_bootstrap_delta
from edgepose.timing.disturbance import ProbeSpec
from edgepose.timing.rounds import TimingPlan

__all__ = ["DEFAULT_ROUNDS", "SCHEMA", "SCHEMA_VERSION", "DeltaCI", "Peak", "ProbeSpec", "TimingPlan", "bench",
           "load_results", "machine_peak", "paired_bootstrap_delta", "write_results"]
