"""What quantizing one group alone costs: ΔPCK@20, ΔMPJPE and output SQNR on the validation split.

For every quantizable group of the fp32 graph (:mod:`edgepose.quantization.groups`), the graph with
*only that group* int8 is built by the probe from one shared calibration and scored on clean
validation windows against the fp32 graph. The accuracy guard ranks groups by these records;
:mod:`edgepose.analysis` writes them as a report. Test windows are never touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

from edgepose.quantization.probe import QuantProbe


@dataclass
class GroupRecord:
    """What quantizing one group alone does.

    ``int8_gain_us``: batch size → microseconds saved per call when this group runs int8
    (positive = faster); ``None`` until a speed profile fills it.
    """

    name: str
    kind: str
    ops: list[str]
    delta_pck20_pp: float
    delta_mpjpe: float
    sqnr_db: float
    int8_gain_us: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)

    def sort_key(self) -> tuple[float, float, float]:
        """Most harmful first: larger PCK drop, then larger MPJPE increase, then lower SQNR."""
        sq = self.sqnr_db if math.isfinite(self.sqnr_db) else (1e9 if self.sqnr_db > 0 else -1e9)
        return (round(self.delta_pck20_pp, 9), -self.delta_mpjpe, sq)


def measure_groups(probe: QuantProbe, log: Callable[[str], None] = print, sqnr: bool = True,
                   names: Iterable[str] | None = None) -> list[GroupRecord]:
    """One :class:`GroupRecord` per group of ``probe`` (or per group in ``names``): that group alone
    int8, scored on validation."""
    records = []
    wanted = None if names is None else set(names)
    groups = [g for g in probe.groups if wanted is None or g.name in wanted]
    n = len(groups)
    for i, g in enumerate(groups, 1):
        path = probe.build([g.name])
        dp, dm = probe.delta(probe.score(path))
        s = probe.sqnr_db(path, g) if sqnr else float("nan")
        path.unlink(missing_ok=True)
        records.append(GroupRecord(g.name, g.kind, list(dict.fromkeys(g.ops)), dp, dm, s))
        log(f"  [{i:>3}/{n}] {g.name:<28s} ΔPCK@20 {dp:+6.2f} pp  ΔMPJPE {dm:+.5f}"
            + (f"  SQNR {s:6.1f} dB" if sqnr else ""))
    return records
