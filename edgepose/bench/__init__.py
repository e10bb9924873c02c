"""Benchmark harness: size, latency (paired rounds), locked accuracy and distance to peak of every artifact."""

from .peak import Peak, machine_peak
from .probe import ProbeSpec
from .run import DEFAULT_ROUNDS, SCHEMA, SCHEMA_VERSION, bench, write_results
from .stats import DeltaCI, paired_bootstrap_delta
from .timing import TimingPlan

__all__ = ["DEFAULT_ROUNDS", "SCHEMA", "SCHEMA_VERSION", "DeltaCI", "Peak", "ProbeSpec", "TimingPlan", "bench",
           "machine_peak", "paired_bootstrap_delta", "write_results"]


from .._callable import make_callable as _make_callable  # noqa: E402

_make_callable(__name__)  # ep.bench(...) calls edgepose.api.bench
