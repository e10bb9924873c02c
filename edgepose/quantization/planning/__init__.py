"""Per-layer int8 precision chosen by measured speed on the target box (``export --objective``).

:mod:`.search` decides which groups run int8 from paired end-to-end timings (no layer-time
sums); :mod:`.timer` builds, loads and times whole graphs through a runtime adapter
(:mod:`edgepose.timing.adapters`) and caches what it measured per graph, CPU, runtime and threads.
The export step that ties it to the accuracy guard is :mod:`edgepose.exporting.objective`.
"""

from edgepose.quantization.planning.search import SearchResult, Unit, block_units, exhaustive, group_units, objective, search
from edgepose.quantization.planning.timer import GraphTimer, ProfileCache, batch_inputs, cache_dir, paired_medians, profile_key

__all__ = ["GraphTimer", "ProfileCache", "SearchResult", "Unit", "batch_inputs", "block_units", "cache_dir",
           "exhaustive", "group_units", "objective", "paired_medians", "profile_key", "search"]
