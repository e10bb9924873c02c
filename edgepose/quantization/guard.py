"""The accuracy guard: the most int8 graph whose validation ΔPCK@20 stays within a budget.

Start from every group int8 that the target runs in int8 (``--max-drop``), or from a recipe's
groups (``start``: the ``guarded`` recipe starts from ``attention-float``'s); while validation ΔPCK@20 < −budget,
put the next most sensitive group (from the per-group scan) back to float and re-measure the
whole graph; stop at the first graph within budget. Validation chooses; the test split is only
scored afterwards, for the card. A configuration must still run at least one convolution or
matmul in int8 (a graph where only pooling or reshapes are "int8" is fp32 in disguise): when
no such configuration meets the budget, nothing qualifies, and the caller decides: ``--max-drop``
fails or (best effort) ships the closest graph seen; the default int8 recipe moves on to its next
candidate.

Two criteria (:data:`CRITERIA`): ``point`` compares the validation ΔPCK@20 itself with the
budget; ``lower`` compares the lower end of its 95 % paired bootstrap interval over validation
recordings, so a configuration passes only when validation is confident it is within budget —
the stricter reading when the validation split holds few recordings.

Two ways to walk the restore order (:data:`STRATEGIES`): ``linear`` re-measures after every
restored group and stops at the first prefix within budget; ``bisect`` assumes that restoring
more groups never makes validation worse and bisects over the prefix length, measuring about
log2(groups) + 2 graphs instead of up to one per group. Where that assumption fails, bisection
still returns a measured configuration that is within budget, but not necessarily the shortest
prefix that is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from edgepose.quantization.probe import QuantProbe
from edgepose.errors import EdgeposeError
from edgepose.quantization.sensitivity import GroupRecord, measure_groups

#: How a configuration is judged against the budget.
CRITERIA = ("point", "lower")
#: How the restore order is walked: one group at a time, or by bisection over the prefix length.
STRATEGIES = ("linear", "bisect")


@dataclass
class GuardStep:
    """One measured configuration of the search."""

    restored: str | None          # the group put back to float at this step (None: the start)
    float_groups: list[str]
    delta_pck20_pp: float
    delta_mpjpe: float
    low_pp: float | None = None
    high_pp: float | None = None


def judge(probe: QuantProbe, path: Path, criterion: str) -> tuple[float, float, float | None, float | None]:
    """The graph at ``path`` on the probe's validation windows: (ΔPCK@20 pp, ΔMPJPE, low, high); the
    95 % interval over recordings is computed only for ``criterion="lower"`` (else low = high = None)."""
    dp, dm = probe.delta(probe.score(path))
    if criterion == "lower":
        _, lo, hi = probe.delta_interval(path)
        return dp, dm, lo, hi
    return dp, dm, None, None


def within_budget(delta_pp: float, low_pp: float | None, criterion: str, max_drop: float) -> bool:
    """Whether a judged graph keeps the budget: its ΔPCK@20 (``point``) or its interval's lower end
    (``lower``) is ≥ −``max_drop`` (NaN never is)."""
    return (low_pp if criterion == "lower" else delta_pp) >= -max_drop


@dataclass
class GuardResult:
    """The search's outcome; ``chosen`` indexes ``steps``."""

    budget_pp: float
    met: bool
    chosen: int
    steps: list[GuardStep]
    restore_order: list[str]
    all_groups: list[str]
    notes: list[str] = field(default_factory=list)
    criterion: str = "point"
    strategy: str = "linear"

    @property
    def choice(self) -> GuardStep:
        return self.steps[self.chosen]

    @property
    def float_groups(self) -> list[str]:
        return list(self.choice.float_groups)

    @property
    def int8_groups(self) -> list[str]:
        kept = set(self.choice.float_groups)
        return [g for g in self.all_groups if g not in kept]

    def to_dict(self) -> dict:
        return {"max_drop_pp": self.budget_pp, "criterion": self.criterion, "strategy": self.strategy,
                "met": self.met,
                "float_groups": self.float_groups,
                "int8_groups": self.int8_groups, "restore_order": self.restore_order,
                "validation": {"delta_pck20_pp": self.choice.delta_pck20_pp,
                               "delta_mpjpe": self.choice.delta_mpjpe, "low_pp": self.choice.low_pp,
                               "high_pp": self.choice.high_pp},
                "steps": [asdict(s) for s in self.steps], "notes": list(self.notes)}


def guard_search(probe: QuantProbe, records: list[GroupRecord] | Callable[[], list[GroupRecord]], max_drop: float,
                 log: Callable[[str], None] = print, criterion: str = "point",
                 strategy: str = "linear", start: list[str] | None = None) -> GuardResult:
    """Restore groups to float, most sensitive first, until validation ΔPCK@20 ≥ −``max_drop``.

    ``records`` are the per-group measurements (their ranking gives the restore order), or a
    function measuring them — called only when the starting graph misses the budget. ``start``:
    the groups int8 at the start (default: every group of the probe); the others stay float
    throughout, and the result's ``all_groups`` are these. Returns
    the first configuration within budget (``met``; with ``strategy="bisect"``, the one found by
    bisection over the prefix length), else the closest one measured (highest ΔPCK@20 — or lower
    bound, with ``criterion="lower"`` — then fewest float groups).
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown guard criterion {criterion!r}; choose from {', '.join(CRITERIA)}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown guard strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if max_drop < 0:
        raise ValueError(f"max_drop is a drop in percentage points, ≥ 0; got {max_drop}")
    groups = probe.group_names
    if start is not None:
        unknown = sorted(set(start) - set(groups))
        if unknown:
            raise ValueError(f"guard start names groups the graph does not have: {', '.join(unknown)}")
        groups = [g for g in groups if g in set(start)]
    order: list[str] = []
    measured_at: dict[int, GuardStep | None] = {}  # prefix length → its step (None: no int8 conv/matmul left)

    def measure(k: int) -> GuardStep | None:
        if k in measured_at:
            return measured_at[k]
        floats = order[:k]
        int8 = [g for g in groups if g not in set(floats)]
        path = probe.build(int8)
        if not int8_weighted_ops(path):  # only passengers left (pooling, reshapes): not an int8 graph
            path.unlink(missing_ok=True)
            measured_at[k] = None
            return None
        dp, dm, lo, hi = judge(probe, path, criterion)
        path.unlink(missing_ok=True)
        restored = floats[-1] if floats else None
        step = measured_at[k] = GuardStep(restored, list(floats), dp, dm, lo, hi)
        interval = f" [{lo:+.2f}, {hi:+.2f}]" if lo is not None else ""
        log(f"  guard: {len(floats):>3} float / {len(int8):>3} int8 groups"
            f"{' (+' + restored + ')' if restored else ''}: validation ΔPCK@20 {dp:+.2f}{interval} pp")
        return step

    def passes(step: GuardStep) -> bool:
        return within_budget(step.delta_pck20_pp, step.low_pp, criterion, max_drop)

    def result(k: int | None) -> GuardResult:
        ks = sorted(j for j, st in measured_at.items() if st is not None)
        steps = [measured_at[j] for j in ks]
        if k is not None:
            return GuardResult(max_drop, True, ks.index(k), steps, order[:k], groups, criterion=criterion,
                               strategy=strategy)
        if not steps:
            raise EdgeposeError("no group of this graph runs a convolution or matmul in int8 for this target")
        value = (lambda st: st.low_pp) if criterion == "lower" else (lambda st: st.delta_pck20_pp)
        best = max(range(len(steps)), key=lambda i: (round(value(steps[i]), 9), -len(steps[i].float_groups)))
        what = ("the lower end of validation ΔPCK@20's 95 % interval" if criterion == "lower"
                else "validation ΔPCK@20")
        return GuardResult(max_drop, False, best, steps, order[:max(ks)], groups,
                           [f"no configuration with an int8 group kept {what} ≥ −{max_drop} pp; "
                            f"closest: {value(steps[best]):+.2f} pp with {len(steps[best].float_groups)} "
                            "group(s) float"], criterion=criterion, strategy=strategy)

    first = measure(0)
    if first is None:
        raise EdgeposeError(f"no group {'of this graph' if start is None else 'the search starts from'} runs a "
                            "convolution or matmul in int8 for this target")
    if passes(first):
        return result(0)
    last = len(groups) - 1  # at least one group stays int8
    if last < 1:
        return result(None)
    measured = records() if callable(records) else records  # the start graph missed: rank the groups now
    order = [r.name for r in sorted(measured, key=GroupRecord.sort_key) if r.name in set(groups)]
    order += [g for g in groups if g not in set(order)]  # unmeasured groups go last
    if strategy == "linear":
        for k in range(1, last + 1):
            step = measure(k)
            if step is None:
                break
            if passes(step):
                return result(k)
        return result(None)
    hi = last
    while hi > 0 and measure(hi) is None:  # the longest prefix that still leaves a conv or matmul int8
        hi -= 1
    if hi == 0 or not passes(measured_at[hi]):
        return result(None)
    lo = 0  # invariant: prefix lo misses the budget, prefix hi meets it
    while hi - lo > 1:
        mid = (lo + hi) // 2
        step = measure(mid)  # never None: it keeps a superset of hi's int8 groups
        if step is not None and passes(step):
            hi = mid
        else:
            lo = mid
    return result(hi)


def guard_groups(probe: QuantProbe, start: list[str], max_drop: float, log: Callable[[str], None] = print,
                 strategy: str = "bisect") -> tuple[GuardResult, list[GroupRecord]]:
    """The guard from ``start`` (a recipe's int8 groups), scanning only those groups when it must.

    Returns the search's result and the per-group records it ranked by (empty when the start
    graph was already within budget and no scan ran).
    """
    records: list[GroupRecord] = []

    def scan() -> list[GroupRecord]:
        records.extend(measure_groups(probe, log, sqnr=False, names=start))
        return records

    return guard_search(probe, scan, max_drop, log, strategy=strategy, start=start), records


def int8_weighted_ops(path) -> int:
    """How many Conv/MatMul/Gemm nodes of a QDQ graph run in int8 (both operands dequantized)."""
    import onnx

    from edgepose.quantization.qdq import reads_int8

    proto = onnx.load(str(path))
    dq = {n.output[0] for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    return sum(1 for n in proto.graph.node if n.op_type in ("Conv", "MatMul", "Gemm") and reads_int8(n, dq))


__all__ = ["CRITERIA", "STRATEGIES", "GuardResult", "GuardStep", "guard_groups", "guard_search", "int8_weighted_ops", "judge",
           "within_budget"]
