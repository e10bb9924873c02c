"""The latency search: which groups run int8, chosen by paired end-to-end measurements.

The search never adds up layer times. Every step compares two whole graphs — the incumbent plan
and one candidate that differs from it in one *unit* (a block of groups, later a single group) —
timed in alternation in one process (``measure``), and keeps a candidate only when it is faster
by more than the noise tolerance (:func:`improves`). It is a best-improvement local search in two stages:

1. **blocks** (a residual block, an attention module, the head): coarse flips, so a whole region
   can leave int8 at once without paying Q/DQ at every boundary on the way;
2. **groups** (one conv + its activation, one residual add …): refinement.

It starts from whichever of *all allowed groups int8* and *all float* is faster, and each round
re-anchors the incumbent against the all-float graph, so chained ratios do not drift. The units the
last accepted move flipped are not tried in the round right after it: flipping one straight back
can only "win" on timing noise (on wiflow-half the main job's search once flipped the pooling block
in, out and in again in three rounds), and skipping them ends a search that has settled a round
sooner. The
objective is the worst batch's latency relative to fp32 plus a tenth of the mean, and a plan
slower than fp32 at any batch scores worse than all-float, so a plan that wins at batch 1 and
loses at batch 64 does not count as a win. A move that only helps the batch that is not the worst
barely moves that objective (a tenth of half its gain), less than the tolerance, so it also counts
when it is a free gain: faster by more than :data:`FREE_GAIN_TOL` at one batch, not slower at
any and faster than fp32 at every batch, confirmed by timing it again. The final plan is timed against fp32 once more
(``verify``, longer than a search step); if it is not faster at every batch, the earlier accepted
plans are verified in turn, and if none is, the answer is the all-float plan; the result says so.

``measure(candidate, incumbent)`` returns, per batch size, the two median latencies in ms; in
tests it is a cost model, in exports a :class:`edgepose.quantization.planning.timer.GraphTimer`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

Config = frozenset
#: (candidate, incumbent) → {batch: (candidate ms, incumbent ms)}
Measure = Callable[[frozenset, frozenset], dict[int, tuple[float, float]]]


def objective(rel: dict[int, float]) -> float:
    """Worst batch's latency relative to fp32, plus a tenth of the mean (lower is better).

    A plan slower than fp32 at any batch scores above all-float (1.1) whatever it does at the
    others, so a plan that wins everywhere always beats one that loses somewhere.
    """
    vals = list(rel.values())
    worst = max(vals)
    if worst >= 1.0:
        return 1.1 + (worst - 1.0)
    return worst + 0.1 * sum(vals) / len(vals)


#: How much faster one batch must get, the others no slower, for a move to count as a free gain: at
#: the edge of the spread of a search comparison of a graph with itself at batch 64 on the 2-core AMD
#: test box (beyond ±5 % in under a fifth of the trials, ``benchmarks/search_noise.py``), so that timing
#: noise alone rarely passes for a gain.
FREE_GAIN_TOL = 0.05


def improves(cand: dict[int, float], inc: dict[int, float], tol: float, free_tol: float = FREE_GAIN_TOL) -> bool:
    """Whether latencies ``cand`` (relative to fp32, per batch) beat the incumbent's ``inc``.

    Either the :func:`objective` is lower by more than the fraction ``tol``, or the move is a free
    gain: more than ``max(tol, free_tol)`` faster at some batch, no slower at any, and faster than
    fp32 at every batch. The second case
    is what the objective cannot see: with batch 1 at 0.79 of fp32 and batch 64 at 0.71, batch 64
    would have to get about 17 points faster before a 1 % tolerance on the objective noticed it. A
    free gain never raises the objective, so the search still only moves downhill.
    """
    return accepted_by(cand, inc, tol, free_tol) is not None


def accepted_by(cand: dict[int, float], inc: dict[int, float], tol: float,
                free_tol: float = FREE_GAIN_TOL) -> str | None:
    """Which rule of :func:`improves` a move passes: ``"objective"``, ``"free gain"`` or ``None``.

    A free gain must also be faster than fp32 at every batch (a move from the all-float plan that
    gains only at batch 64 is not one).
    """
    if objective(cand) < objective(inc) * (1 - tol):
        return "objective"
    gain = max(tol, free_tol)
    if (max(cand.values()) < 1.0 and all(cand[b] <= inc[b] * (1 + 1e-9) for b in inc)
            and any(cand[b] < inc[b] * (1 - gain) for b in inc)):
        return "free gain"
    return None


@dataclass
class Step:
    """One accepted move (or the start) of the search."""

    stage: str
    round: int
    flipped: list[str]
    rel_to_fp32: dict[int, float]
    int8_groups: int
    config: tuple[str, ...] = ()
    #: the rule that kept the move (:func:`accepted_by`); empty for the start
    accepted_by: str = ""


@dataclass
class SearchResult:
    """The chosen int8 set, its measured latency relative to fp32, and how the search got there.

    ``gains_us``: group → batch → microseconds the group saves by being int8 *in the final plan's
    context* (the last round's single-group flips; negative = int8 is slower there).
    ``verified``: the final plan against fp32, per batch: (plan ms, fp32 ms); empty when the
    plan is all-float. ``fell_back``: the search found int8 plans but none verified faster than
    fp32 at every batch, so the answer is all-float.
    ``reached``: the stages the search started (a deadline can stop it before the last).
    """

    int8: frozenset
    rel_to_fp32: dict[int, float]
    verified: dict[int, tuple[float, float]]
    steps: list[Step]
    gains_us: dict[str, dict[int, float]]
    evaluations: int
    seconds: float
    fell_back: bool = False
    stopped_early: bool = False
    notes: list[str] = field(default_factory=list)
    reached: list[str] = field(default_factory=list)


@dataclass
class Unit:
    """A set of groups flipped together."""

    name: str
    groups: tuple[str, ...]


def block_units(groups: Sequence[str]) -> list[Unit]:
    """Groups gathered by their top-level module block (``tcn.0.body.1`` → ``tcn.0``; ``attn_w.qkv`` → ``attn_w``)."""
    blocks: dict[str, list[str]] = {}
    for g in groups:
        parts = g.split(".")
        key = ".".join(parts[:2]) if len(parts) >= 2 and parts[1].isdigit() else parts[0]
        blocks.setdefault(key, []).append(g)
    return [Unit(k, tuple(v)) for k, v in blocks.items()]


def group_units(groups: Sequence[str]) -> list[Unit]:
    return [Unit(g, (g,)) for g in groups]


def _flip(inc: frozenset, unit: Unit) -> frozenset:
    members = set(unit.groups)
    return inc - members if members <= inc else inc | members


def search(allowed: Sequence[str], measure: Measure, batches: Sequence[int], tol: float = 0.01,
           max_rounds: int = 4, stages: Sequence[tuple[str, list[Unit]]] | None = None,
           deadline_s: float | None = None, log: Callable[[str], None] = print,
           progress: Callable[[int, str], Callable[[], None]] | None = None,
           verify: Measure | None = None, seeds: Sequence[Sequence[str]] = (),
           clock: Callable[[], float] = time.perf_counter, min_comparison_s: float = 0.0) -> SearchResult:
    """Choose the subset of ``allowed`` groups to run int8 that minimises measured latency.

    Args:
        allowed: the groups the accuracy guard lets run int8 (everything else stays float).
        measure: paired timing of two configurations (sets of int8 groups).
        batches: the batch sizes the plan must be fast at.
        tol: a move is kept only when it lowers the objective by more than this fraction, or is
            a free gain (:func:`accepted_by`), confirmed by a second timing.
        max_rounds: rounds per stage (each round tries every unit once).
        stages: (name, units) pairs; default blocks then single groups.
        deadline_s: finish the rounds within this many seconds: a round starts only when it is
            expected to end by then (its comparisons — the re-anchor, one per unit tried and one
            more for a confirmation or a combined move — times the mean comparison so far, at least
            ``min_comparison_s``); the starting points and the final check always run. The best
            plan so far is kept.
        progress: ``progress(total, label)`` returns a tick function, called once per measurement.
        verify: the measurement of the final check against fp32 (default ``measure``); give a
            longer one, since the plan's claim rests on it.
        seeds: further starting points (a prior, e.g. everything but the attention blocks), timed
            against fp32 beside all-allowed and all-float; the fastest of them starts the search.
        clock: seconds, for the deadline (a test's fake clock).
        min_comparison_s: the least one comparison can take when it is timed (its timing length):
            replayed comparisons cost almost nothing, and must not make an untimed round look free.
    """
    t0 = clock()
    allowed_set = frozenset(allowed)
    stages = list(stages) if stages is not None else [("blocks", block_units(allowed)), ("groups", group_units(allowed))]
    count = [0]
    empty: frozenset = frozenset()

    def timed(cand: frozenset, inc: frozenset) -> dict[int, tuple[float, float]]:
        count[0] += 1
        return measure(cand, inc)

    ones = {b: 1.0 for b in batches}
    steps: list[Step] = []
    notes: list[str] = []
    gains: dict[str, dict[int, float]] = {}
    if allowed_set:
        m = timed(allowed_set, empty)
        rel_full = {b: m[b][0] / m[b][1] for b in batches}
    else:
        rel_full = dict(ones)
    if allowed_set and objective(rel_full) < objective(ones):
        inc, rel, start = allowed_set, rel_full, "all-int8"
    else:
        inc, rel, start = empty, dict(ones), "all-float"
    log(f"  plan: all {len(allowed_set)} allowed groups int8 run at "
        + ", ".join(f"b{b} {1 / rel_full[b]:.2f}×" for b in batches) + " of fp32")
    for seed in seeds:
        cand = frozenset(seed) & allowed_set
        if not cand or cand == allowed_set:
            continue
        m = timed(cand, empty)
        rel_s = {b: m[b][0] / m[b][1] for b in batches}
        log(f"  plan: seed of {len(cand)} groups int8 runs at " + ", ".join(f"b{b} {1 / rel_s[b]:.2f}×" for b in batches)
            + " of fp32")
        if objective(rel_s) < objective(rel):
            inc, rel, start = cand, rel_s, f"the seed of {len(cand)} groups"
    steps.append(Step("start", 0, sorted(inc), dict(rel), len(inc), tuple(sorted(inc))))
    log(f"  plan: starting from {start}")
    stopped = False
    settled = False
    reached: list[str] = []

    def round_fits(n_tried: int) -> tuple[bool, int]:
        """Whether a round trying ``n_tried`` units is expected to end by the deadline; its comparisons."""
        n = n_tried + (1 if inc else 0) + 1  # re-anchor, the units, a confirmation or a combined move
        if deadline_s is None:
            return True, n
        spent = clock() - t0
        per = max(spent / max(count[0], 1), min_comparison_s)
        return spent + n * per <= deadline_s, n

    for stage, units in stages:
        units = [Unit(u.name, tuple(g for g in u.groups if g in allowed_set)) for u in units]
        units = [u for u in units if u.groups]
        if not units:
            continue
        ok, n = round_fits(len(units))
        if not ok:
            stopped = True
            notes.append(f"search stopped at its {deadline_s:.0f} s deadline before the {stage} stage "
                         f"(a round of {n} comparisons would not end in time); the best plan so far is kept")
            break
        reached.append(stage)
        settled = False
        just_moved: set[str] = set()  # names of the units the last accepted move flipped
        for rnd in range(1, max_rounds + 1):
            tried = [u for u in units if u.name not in just_moved]
            if not tried:  # the only unit(s) left were just flipped: nothing new to try
                settled = True
                break
            if not round_fits(len(tried))[0]:
                stopped = True
                break
            tick = progress(len(tried) + 1, f"{stage} round {rnd}") if progress else (lambda: None)
            if inc:  # re-anchor against fp32 so chained ratios do not drift
                m = timed(inc, empty)
                rel = {b: m[b][0] / m[b][1] for b in batches}
            tick()
            trials = []
            for u in tried:
                cand = _flip(inc, u)
                m = timed(cand, inc)
                tick()
                cand_rel = {b: rel[b] * m[b][0] / m[b][1] for b in batches}
                trials.append((u, cand, cand_rel))
                if stage == stages[-1][0] and len(u.groups) == 1:
                    gains[u.groups[0]] = int8_gain_us(u.groups[0], inc, m)
            better = []
            for u, cand, cand_rel in sorted(trials, key=lambda t: objective(t[2])):
                rule = accepted_by(cand_rel, rel, tol)
                if rule == "free gain":  # one comparison at batch 64 is noisy (docs/precision-plan.md): time it again
                    m = timed(cand, inc)
                    again = {b: rel[b] * m[b][0] / m[b][1] for b in batches}
                    if accepted_by(again, rel, tol) is None:
                        continue
                    cand_rel = {b: max(cand_rel[b], again[b]) for b in batches}  # the less flattering reading
                if rule is not None:
                    better.append((u, cand, cand_rel, rule))
            if not better:
                settled = True
                log(f"  plan: {stage} round {rnd}: no move beats the incumbent by > {100 * tol:.0f} %; "
                    f"{len(inc)} groups int8, " + ", ".join(f"b{b} {1 / rel[b]:.2f}×" for b in batches))
                break
            best_u, best_cand, best_rel, best_rule = better[0]
            chosen = ([best_u], best_cand, best_rel, best_rule)
            if len(better) > 1:
                combined = inc
                for u, _, _, _ in better:  # units of one stage are disjoint: each flips as it would alone
                    combined = combined - set(u.groups) if set(u.groups) <= inc else combined | set(u.groups)
                m = timed(combined, inc)
                comb_rel = {b: rel[b] * m[b][0] / m[b][1] for b in batches}
                comb_rule = accepted_by(comb_rel, rel, tol)
                if comb_rule is not None and objective(comb_rel) <= objective(best_rel):
                    chosen = ([u for u, _, _, _ in better], combined, comb_rel, comb_rule)
            moved, inc, rel, rule = chosen
            just_moved = {u.name for u in moved}
            steps.append(Step(stage, rnd, [u.name for u in moved], dict(rel), len(inc), tuple(sorted(inc)), rule))
            log(f"  plan: {stage} round {rnd}: flipped {len(moved)} unit(s) "
                f"({', '.join(u.name for u in moved[:4])}{' …' if len(moved) > 4 else ''}; {rule}); {len(inc)} groups int8, "
                + ", ".join(f"b{b} {1 / rel[b]:.2f}×" for b in batches))
        if stopped:
            notes.append(f"search stopped at its {deadline_s:.0f} s deadline in the {stage} stage (its next round "
                         "would not end in time); the best plan so far is kept")
            break
    if gains and (stopped or not settled):
        notes.append("the per-group gains were measured around the plan before the search's last move "
                     "(it ran out of rounds or time)")
    # verify end to end against fp32, once more and never from the chain; if the final plan does
    # not win at every batch, verify the earlier accepted plans, newest first
    check = verify or measure
    candidates = [inc] + [frozenset(x) for x in _earlier(steps, inc)]
    verified: dict[int, tuple[float, float]] = {}
    final: frozenset = frozenset()
    for k, cand in enumerate(candidates[:3]):
        if not cand:
            break
        count[0] += 1
        m = check(cand, empty)
        rel_c = {b: m[b][0] / m[b][1] for b in batches}
        if max(rel_c.values()) < 1.0:
            final, verified, rel = cand, {b: m[b] for b in batches}, rel_c
            if k:
                notes.append(f"the final plan was not faster than fp32 at every batch when verified; an earlier plan "
                             f"({len(cand)} groups int8) was, and is kept")
            break
        slow = [b for b in batches if rel_c[b] >= 1.0]
        if k == 0:
            notes.append("the best plan found was not faster than fp32 at batch " + ", ".join(map(str, slow))
                         + " when verified end to end")
    fell_back = bool(inc) and not final
    if not final:
        rel = dict(ones)
        notes.append("no int8 plan was faster than fp32 at every batch on this machine: the plan is all-float "
                     "(fp32-equivalent)")
    return SearchResult(final, rel, verified, steps, gains, count[0], clock() - t0, fell_back, stopped,
                        notes, reached)


def _earlier(steps: list[Step], current: frozenset) -> list[frozenset]:
    """The configurations of the accepted steps before the last, newest first, without repeats."""
    seen = {current}
    out = []
    for s in reversed(steps):
        cfg = frozenset(s.config)
        if cfg not in seen and cfg:
            seen.add(cfg)
            out.append(cfg)
    return out


def int8_gain_us(group: str, context: frozenset, m: dict[int, tuple[float, float]]) -> dict[int, float]:
    """µs ``group`` saves by being int8, from ``m`` = measure(context with ``group`` flipped, context).

    Gain = (time with the group float) − (time with it int8); negative means int8 is slower.
    """
    sign = 1.0 if group in context else -1.0
    return {b: sign * 1e3 * (cand - inc) for b, (cand, inc) in m.items()}


def flip_gains(context: frozenset, groups: Sequence[str], measure: Measure,
               tick: Callable[[], None] = lambda: None) -> dict[str, dict[int, float]]:
    """Each group's int8 gain in µs around ``context``: that group flipped alone, the rest as in ``context``."""
    out = {}
    for g in groups:
        cand = context - {g} if g in context else context | {g}
        out[g] = int8_gain_us(g, context, measure(cand, context))
        tick()
    return out


def exhaustive(units: Iterable[Unit], measure: Measure, batches: Sequence[int],
               fixed: frozenset = frozenset()) -> list[tuple[float, frozenset, dict[int, float]]]:
    """Brute force: every subset of ``units`` int8 (plus ``fixed``), each timed against all-float.

    Returns (objective, configuration, latency relative to fp32) for every subset, best first —
    for checking the search on small models.
    """
    import itertools

    units = list(units)
    out = []
    for k in range(len(units) + 1):
        for combo in itertools.combinations(units, k):
            cand = fixed | frozenset(g for u in combo for g in u.groups)
            if not cand:
                rel = {b: 1.0 for b in batches}
            else:
                m = measure(cand, frozenset())
                rel = {b: m[b][0] / m[b][1] for b in batches}
            out.append((objective(rel), cand, rel))
    return sorted(out, key=lambda r: r[0])


__all__ = ["FREE_GAIN_TOL", "Config", "Measure", "SearchResult", "Step", "Unit", "block_units", "exhaustive", "flip_gains",
           "accepted_by", "group_units", "improves", "int8_gain_us", "objective", "search"]
