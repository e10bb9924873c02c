"""int8 with a per-layer precision plan: ``export --precision int8 --objective latency|size``.

1. **Accuracy** (validation only): every group alone int8 is scored (its PCK cost), and the
   accuracy guard (:mod:`edgepose.quantization.guard`) finds the most-int8 configuration within
   ``--max-drop`` (default :data:`DEFAULT_MAX_DROP`). Only its int8 groups may be int8 in the plan.
2. **Speed** (``latency``): among those groups, :func:`edgepose.quantization.planning.search.search` picks the
   set that runs fastest on *this* machine, from paired end-to-end timings of whole graphs at the
   requested batch sizes and thread count, through a runtime adapter. ``size`` keeps every
   allowed group int8 (int8 weights are always smaller).
3. **Verify**: the chosen graph is scored on validation again; if the plan's mix misses the
   budget, the most sensitive int8 groups go back to float until it does not. Test only reports.

The card's ``plan`` records each group's precision and why (measured µs gain in the plan's
context, PCK cost alone), the end-to-end latency against fp32, the search's steps, the profile
cache it came from, and the machine, runtime and threads it was measured with. When no int8
group pays, the artifact is the fp32 graph, labelled as such, and the log says so.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from edgepose.exporting.card import write_card
from edgepose.exporting.context import ExportContext
from edgepose.exporting.request import OBJECTIVES
from edgepose.metrics import ACCURACY_GATE_PP

#: The accuracy budget of a plan when ``--max-drop`` is not given (pp of *validation* PCK@20):
#: the one accuracy gate, :data:`edgepose.metrics.ACCURACY_GATE_PP`.
DEFAULT_MAX_DROP = ACCURACY_GATE_PP


def _progress(label_prefix: str = "plan") -> tuple[Callable[[int, str], Callable[[], None]], Callable[[], None]]:
    """A tqdm bar per search round on stderr (hidden when stderr is not a terminal)."""
    from tqdm import tqdm

    state: dict = {}

    def close() -> None:
        bar = state.pop("bar", None)
        if bar is not None:
            bar.close()

    def start(total: int, label: str) -> Callable[[], None]:
        close()
        bar = tqdm(total=total, desc=f"{label_prefix} {label}", unit="graph", leave=False, file=sys.stderr,
                   disable=None)
        state["bar"] = bar
        return lambda: bar.update(1)

    return start, close


def _why(int8: bool, allowed: bool, restored: bool, gain: dict | None, cost: float | None,
         fell_back: bool = False, groups_timed: bool = True) -> str:
    """One line saying why a group has the precision the plan gives it."""
    g = ", ".join(f"b{b} {v:+.1f} µs" for b, v in gain.items()) if gain else None
    c = f"alone ΔPCK@20 {cost:+.2f} pp" if cost is not None else "PCK cost not measured"
    if int8:
        if g is None:
            return f"int8: inside the accuracy budget; {c}"
        if all(v > 0 for v in gain.values()):
            return f"int8 pays: saves {g} in this plan; {c}"
        if all(v <= 0 for v in gain.values()):
            return f"int8, though flipping it alone measured no gain here ({g}): its block as a whole was faster; {c}"
        return f"int8: mixed across batches ({g}), the plan's objective was better with it; {c}"
    if restored:
        return f"float for accuracy: restored after the speed search; {c}"
    if not allowed:
        return f"float for accuracy: the guard keeps it float; {c}"
    if fell_back:
        return "float: no int8 plan was faster than fp32 at every batch when verified" + (f" ({g})" if g else "")
    if g is None:
        return ("float for speed: its block ran faster in float" if groups_timed
                else "float: the search stopped before timing single groups")
    if any(v < 0 for v in gain.values()):
        return f"float for speed: int8 is slower here ({g})"
    return f"float for speed: int8 gains less than the search's noise tolerance here ({g})"


#: ``--search`` values: the units the latency search flips, coarse to fine
SEARCHES = ("blocks", "full")


def search_stages(kind: str, allowed: list[str]) -> list:
    """The search's stages: top-level blocks only (``blocks``, the default: minutes), or blocks then
    single groups (``full``: about three times the timings, for the last few per cent)."""
    from edgepose.quantization.planning.search import block_units, group_units

    stages = [("blocks", block_units(allowed))]
    return stages + [("groups", group_units(allowed))] if kind == "full" else stages


#: the two layouts the latency plan times its int8 sets in (``models/padding.py``)
UNPADDED_LAYOUT, PADDED_LAYOUT = "unpadded", "tcn-padded"
#: marks the unpadded graph's configurations in the layout step's timer and profile cache (never a group name)
_UNPADDED = "@unpadded"
#: the noise tolerance (a fraction) by which the padded graph must beat the unpadded one to ship, as
#: :func:`~edgepose.quantization.planning.search.improves` judges it (a tie ships the plain graph)
LAYOUT_TOL = 0.01


def _padded_probe(ctx: ExportContext, probe):
    """The probe of the TCN-padded fp32 graph with ``probe``'s activation ranges, or ``None`` when the
    model's TCN needs no padding or the padded graph's groups or tensors do not match.

    Padding (:func:`edgepose.models.padding.pad_tcn_channels`) is exact and keeps every tensor name, so
    the same int8 groups with the same ranges compute the same int8 function in both layouts.
    """
    import dataclasses
    import itertools

    import onnx

    from edgepose.quantization.groups import leaf_module_paths, quant_groups

    if not ctx.can_pad_channels:
        return None
    graph = onnx.load(str(ctx.padded_fp32_onnx()))
    groups = quant_groups(graph, probe.target, leaf_module_paths(ctx.model))
    tensors = {t for n in graph.graph.node for t in (*n.input, *n.output)}
    if sorted(g.name for g in groups) != sorted(probe.group_names) or not set(probe.ranges) <= tensors:
        return None
    return dataclasses.replace(probe, fp32_path=ctx.padded_fp32_onnx(), groups=groups, work=ctx.work / "probe-padded",
                               _counter=itertools.count(), _fp32_taps=None)


def _choose_layout(ctx: ExportContext, probe, padded, final: frozenset, ms: dict, timer, criterion: str,
                   budget: float, log) -> tuple[dict, bool, dict, tuple | None]:
    """The plan's int8 set was searched and timed in the TCN-padded layout (``ms``: padded vs fp32 per
    batch); time it in the unpadded layout too, paired, and keep the padded graph only when it beats
    the unpadded one by the search's own rule (:func:`~edgepose.quantization.planning.search.improves`
    with :data:`LAYOUT_TOL`: the objective better by more than 1 %, or a free gain of more than 5 % at
    one batch, no slower at any) and it stays within the accuracy budget on validation. Padding lets ONNX Runtime's pointwise int8 convolutions take the batch-parallel path;
    whether that pays depends on the CPU and the threads (docs/int8-threads.md), so it is measured.
    The comparison is cached with the plan's other timings, so a rerun replays the same choice.

    Returns (the layout record, whether the padded graph ships, the shipped graph's (ms, fp32 ms) per
    batch, the padded graph's validation (ΔPCK@20, ΔMPJPE, low, high) when it ships).
    """
    from edgepose.models.padding import tcn_padding
    from edgepose.quantization.guard import judge, within_budget
    from edgepose.quantization.planning.search import improves
    from edgepose.quantization.planning.timer import GraphTimer

    layouts = tcn_padding(ctx.model)
    record: dict = {"searched_in": PADDED_LAYOUT, "tried": [PADDED_LAYOUT, UNPADDED_LAYOUT],
                    "tcn_widths": [lay.width for lay in layouts], "tcn_padded_widths": [lay.padded for lay in layouts]}

    def build(config: frozenset) -> bytes:  # the empty set is the exporter's (unpadded) fp32 graph
        if _UNPADDED in config or not config:
            return probe.graph_bytes(config - {_UNPADDED})
        return padded.graph_bytes(config)

    both = GraphTimer(build, timer.adapter, timer.threads, timer.inputs, seconds=timer.seconds, cache=timer.cache,
                      parallel=timer.parallel)
    plain = frozenset(final) | {_UNPADDED}
    # (padded ms, unpadded ms): the padded graph is the one that has to win
    m = both(frozenset(final), plain, seconds=3 * timer.seconds)
    rel_padded = {b: ms[b][0] / ms[b][1] for b in ms}
    rel_plain = {b: rel_padded[b] * m[b][1] / m[b][0] for b in ms}
    record["padded_vs_unpadded"] = {str(b): {"padded_ms": m[b][0], "unpadded_ms": m[b][1],
                                             "speedup": m[b][1] / m[b][0]} for b in ms}
    shown = ", ".join(f"b{b} {m[b][1] / m[b][0]:.2f}×" for b in ms)

    def unpadded(why: str, padded_ok: bool = True) -> tuple[dict, bool, dict, None]:
        timed = both(plain, frozenset(), fresh=True, seconds=3 * timer.seconds)
        if padded_ok and any(timed[b][0] >= timed[b][1] for b in ms):  # lost to fp32 where the padded one won
            record.update(chosen=PADDED_LAYOUT, why=f"{why}, but the unpadded graph was not faster than fp32 "
                                                     f"at every batch when re-timed")
            return record, True, ms, None
        record.update(chosen=UNPADDED_LAYOUT, why=why)
        log(f"plan: layout: unpadded ({why})")
        return record, False, {b: timed[b] for b in ms}, None

    if not improves(rel_padded, rel_plain, LAYOUT_TOL):
        return unpadded(f"the padded TCN did not pay enough here ({shown} vs unpadded)")
    path = padded.build(sorted(final))
    try:
        val = judge(padded, path, criterion)
    finally:
        path.unlink(missing_ok=True)
    if not within_budget(val[0], val[2], criterion, budget):
        return unpadded(f"the padded graph missed the accuracy budget on validation (ΔPCK@20 {val[0]:+.2f} pp)",
                        padded_ok=False)
    record.update(chosen=PADDED_LAYOUT, why=f"the padded TCN paid ({shown} vs unpadded)")
    log(f"plan: layout: TCN padded to {record['tcn_padded_widths']} ({shown} vs unpadded)")
    return record, True, ms, val


def export_planned(ctx: ExportContext, objective: str | None = None, recipe: str | None = None,
                   criterion: str | None = None, strategy: str | None = None) -> Path:
    """Search, verify and write the plan's graph and card; returns the artifact path.

    ``objective``: the plan's objective (default ``ctx.req.objective``). ``recipe``: the planned
    recipe asking for it (``auto``, the default int8): its name goes into the file name and the
    card (``recipe: {recipe: auto, chosen: plan-latency | fp32}``), and the card's ``plan`` is the
    same record an ``--objective`` export writes. ``criterion``: how the accuracy budget is judged on
    validation, by the guard and by the final check of the mix (default ``ctx.req.guard_criterion``):
    ``point`` (ΔPCK@20 itself) or ``lower`` (the lower end of its 95 % interval over recordings).
    ``strategy``: how the guard walks its restore order (default ``ctx.req.guard_strategy``).

    Time: the search's rounds end within ``ctx.req.search_minutes`` of the export's start (the
    calibration and the accuracy guard come first); the final check and the layout choice follow.
    """
    from edgepose.quantization.sensitivity import measure_groups
    from edgepose.timing.adapters import get_adapter
    from edgepose.quantization.planning.search import search
    from edgepose.quantization.planning.timer import GraphTimer, ProfileCache, batch_inputs, profile_key
    from edgepose.runtime.cpu import cpu_summary
    from edgepose.quantization.guard import guard_search, judge, within_budget
    from edgepose.quantization.ptq import scheme_params
    from edgepose.quantization.recipes import outside_attention

    req = ctx.req
    log = req.log
    objective = objective or req.objective
    criterion = criterion or req.guard_criterion
    strategy = strategy or req.guard_strategy
    budget = req.max_drop if req.max_drop is not None else DEFAULT_MAX_DROP
    adapter = get_adapter(req.runtime)
    t0 = time.perf_counter()
    calib = ctx.calibration()
    probe = ctx.probe(val_windows=req.guard_val_windows, calib=calib)
    fp32_bytes = Path(ctx.fp32_onnx()).read_bytes()
    log(f"plan: objective {objective}, {len(probe.groups)} groups, {len(probe.x)} clean validation windows "
        f"(fp32 PCK@20 {100 * probe.reference.pck20:.2f} %), budget −{budget} pp ({criterion}), runtime {adapter.name} "
        f"{adapter.version()}, threads {req.threads or 'default'} ({req.parallel} mode), batches {', '.join(map(str, req.batches))}")

    # 1. accuracy: the most-int8 set within budget; what each group costs alone is measured only when
    #    the all-int8 graph misses the budget (or a restore needs the ranking)
    records: dict = {}

    def scan() -> list:
        if not records:
            records.update({r.name: r for r in measure_groups(probe, log, sqnr=False)})
        return list(records.values())

    guard = guard_search(probe, scan, budget, log, criterion=criterion, strategy=strategy)
    allowed = guard.int8_groups if guard.met else []
    notes: list[str] = [] if guard.met else [f"{guard.notes[0]}: no group may be int8"]

    # 2. speed
    # a model whose TCN can be padded is searched in the padded layout (the same int8 function; where
    # ONNX Runtime's int8 convolutions are faster padded, the search picks the sets that use it), and
    # the final set is then timed unpadded too (step 4); fp32, the all-float reference, is always the
    # exporter's unpadded graph
    padded = _padded_probe(ctx, probe) if objective == "latency" and probe.target.name == "ort-cpu" else None
    search_probe = padded or probe
    key = profile_key(hashlib.sha256(fp32_bytes).hexdigest(),
                      f"{probe.target.name}/{req.calib}" + (f"/{PADDED_LAYOUT}" if padded else ""), adapter,
                      req.threads, req.parallel)
    cache = ProfileCache(key, enabled=req.profile_cache)
    timer = GraphTimer(lambda c: search_probe.graph_bytes(c) if c else probe.graph_bytes(c), adapter, req.threads,
                       batch_inputs(probe.x, req.batches),
                       seconds=req.timing_seconds, cache=cache, parallel=req.parallel)
    search_doc: dict = {}
    gains: dict = {}
    fell_back = False
    reached: list[str] = []
    try:
        if objective == "latency" and allowed:
            start, close = _progress()
            try:
                remaining = max(0.0, 60.0 * req.search_minutes - (time.perf_counter() - t0))
                if remaining == 0.0:
                    log(f"plan: --search-minutes {req.search_minutes:g} were spent before the search (calibration and "
                        "the accuracy guard): only its starting points are timed")
                result = search(allowed, timer, req.batches, deadline_s=remaining, log=log, progress=start,
                                min_comparison_s=req.timing_seconds * len(req.batches),
                                verify=lambda c, i: timer(c, i, seconds=3 * req.timing_seconds),
                                stages=search_stages(req.search, allowed),
                                seeds=[outside_attention(probe.groups)])
            finally:
                close()
            int8 = set(result.int8)
            gains, fell_back, reached = result.gains_us, result.fell_back, result.reached
            notes += result.notes
            search_doc = {"evaluations": result.evaluations, "seconds": result.seconds, "deadline_s": remaining,
                          "fell_back": result.fell_back,
                          "stopped_early": result.stopped_early, "stages": result.reached,
                          "steps": [{"stage": s.stage, "round": s.round, "flipped": s.flipped,
                                     "speedup_vs_fp32": {str(b): 1.0 / r for b, r in s.rel_to_fp32.items()},
                                     "int8_groups": s.int8_groups, "accepted_by": s.accepted_by or None}
                                    for s in result.steps]}
        else:
            int8 = set(allowed)
        # 3. verify accuracy of the mix on validation; restore the most sensitive groups if needed
        restored: list[str] = []
        while True:
            if not int8:
                dp = dm = 0.0
                lo = hi = None
                break
            path = probe.build(sorted(int8))
            dp, dm, lo, hi = judge(probe, path, criterion)
            path.unlink(missing_ok=True)
            if within_budget(dp, lo, criterion, budget):
                break
            ranked = [r.name for r in sorted(scan(), key=lambda r: r.sort_key())]
            g = next(n for n in ranked if n in int8)
            int8.discard(g)
            restored.append(g)
            shown = f"{dp:+.2f}" + (f" [{lo:+.2f}, {hi:+.2f}]" if lo is not None else "")
            log(f"  plan: validation ΔPCK@20 {shown} pp misses the budget; {g} back to float")
        if restored:
            notes.append(f"{len(restored)} group(s) restored to float after the speed search to meet the budget")
        final = frozenset(int8)
        ms: dict = {}
        searched = bool(search_doc)
        if final and searched and not restored and cache.hits == 0:
            ms = dict(result.verified)  # the search's own final check, timed in this run
        elif final:  # restored, replayed from the cache, or never searched: time it now
            m = timer(final, frozenset(), fresh=True, seconds=3 * req.timing_seconds)
            ms = {b: m[b] for b in req.batches}
            slow = [b for b in req.batches if ms[b][0] >= ms[b][1]]
            if slow and objective == "latency":  # a latency plan never ships int8 slower than fp32
                when = ("after accuracy restores" if restored
                        else "re-timed now (the search was replayed from the cache; --no-profile-cache searches again)")
                notes.append(f"{when} the plan was not faster than fp32 at batch {', '.join(map(str, slow))}: all-float")
                final, ms = frozenset(), {}
        # 4. layout: the padded search's set, timed unpadded too; the plain graph ships unless padding paid
        layout = None
        built_by = probe
        if final and padded is not None:
            layout, keep_padded, ms, val = _choose_layout(ctx, probe, padded, final, ms, timer, criterion, budget, log)
            if keep_padded:
                built_by = padded
                if val is not None:
                    dp, dm, lo, hi = val
            slow = [b for b in ms if ms[b][0] >= ms[b][1]]
            if slow:  # the unpadded graph had to ship and was not faster than fp32 there
                notes.append(f"the unpadded plan was not faster than fp32 at batch {', '.join(map(str, slow))}: "
                             f"all-float")
                final, ms, built_by = frozenset(), {}, probe
    finally:
        cache.save()  # measurements survive an interrupted or failed export
    is_int8 = bool(final)
    if not is_int8:
        why = ("no configuration with int8 groups met the accuracy budget" if not allowed
               else "no int8 plan was faster than fp32 at every batch here" if objective == "latency"
               else "every allowed group was restored for accuracy")
        log(f"plan: {why} — the artifact is the fp32 graph")

    if recipe:  # the default int8 names itself, as the other recipes do; the fp32 fallback as auto's always did
        tag = (f"int8-ptq-{req.calib}-{recipe}-{probe.target.name}" if is_int8
               else f"fp32-{recipe}-{probe.target.name}")
    else:
        tag = f"{'int8' if is_int8 else 'fp32'}-plan-{objective}-{probe.target.name}"
    out = ctx.work / f"{ctx.name}.{tag}.onnx"
    if is_int8:
        built_by.build(sorted(final), out)
    else:
        shutil.copyfile(ctx.fp32_onnx(), out)
    test = ctx.test_delta(out, probe.threads)
    par = ctx.parity_vs_torch(out)
    layers = []
    for g in probe.groups:
        rec = records.get(g.name)
        cost = rec.delta_pck20_pp if rec else None
        layers.append({"name": g.name, "kind": g.kind, "precision": "int8" if g.name in final else "float",
                       "why": _why(g.name in final, g.name in allowed, g.name in restored,
                                   gains.get(g.name), cost, fell_back,
                                   "groups" in reached or (req.search == "blocks" and "blocks" in reached)),
                       "int8_gain_us": {str(b): v for b, v in gains.get(g.name, {}).items()} or None,
                       "pck_cost_pp": cost})
    plan = {
        "objective": objective, "max_drop_pp": budget, "batches": list(req.batches), "threads": req.threads,
        "parallel": req.parallel,
        "runtime": adapter.describe(), "machine": cpu_summary(), "int8": is_int8,
        "int8_groups": sorted(final), "float_groups": [g.name for g in probe.groups if g.name not in final],
        "restored_for_accuracy": restored, "allowed_by_guard": list(allowed),
        "end_to_end": {str(b): {"plan_ms": ms[b][0], "fp32_ms": ms[b][1], "speedup": ms[b][1] / ms[b][0]}
                       for b in ms},
        "validation": {"windows": int(len(probe.x)), "fp32_pck20": probe.reference.pck20,
                       "delta_pck20_pp": dp if is_int8 else 0.0, "delta_mpjpe": dm if is_int8 else 0.0,
                       **({"low_pp": lo if is_int8 else 0.0, "high_pp": hi if is_int8 else 0.0}
                          if criterion == "lower" else {})},
        "criterion": criterion,
        "test": test, "layers": layers, "search": search_doc,
        "guard": {"met": guard.met, "restore_order": guard.restore_order, "float_groups": guard.float_groups,
                  "groups_scanned": bool(records), "strategy": strategy, "graphs_judged": len(guard.steps)},
        "search_units": req.search,
        "layout": layout,
        "profile": {"cache": str(cache.path), "key": key, "cache_hits": cache.hits, "timed": timer.timed,
                    "seconds_per_comparison": req.timing_seconds},
        "seconds": time.perf_counter() - t0, "notes": notes,
    }
    card = {**ctx.base_card("int8" if is_int8 else "fp32"), "method": "ptq" if is_int8 else "export",
            "target": probe.target.name,
            "recipe": {**(scheme_params(probe.target, req.calib) if is_int8 else {}),
                       **({"recipe": recipe, "chosen": f"plan-{objective}" if is_int8 else "fp32"} if recipe
                          else {"recipe": f"plan-{objective}"}),
                       "float_groups": plan["float_groups"], "int8_groups": len(final)},
            "calibration": calib.describe(), "plan": plan, "parity": {"vs_fp32_torch": par}}
    if is_int8 and built_by is padded:
        card["channel_padding"] = {"requested": False, "applied": True, "chosen_by": "the plan's layout timing",
                                   "tcn_widths": layout["tcn_widths"], "tcn_padded_widths": layout["tcn_padded_widths"],
                                   "exact": True}
    write_card(out, card)
    speed = ", ".join(f"b{b} {ms[b][1] / ms[b][0]:.2f}× fp32" for b in ms) or "fp32"
    log(f"plan: {len(final)}/{len(probe.groups)} groups int8 ({speed}); validation ΔPCK@20 "
        f"{plan['validation']['delta_pck20_pp']:+.2f} pp, test {test['delta_pck20_pp']:+.2f} pp; "
        f"{time.perf_counter() - t0:.0f} s")
    for n in notes:
        log(f"plan: note: {n}")
    return out


__all__ = ["DEFAULT_MAX_DROP", "LAYOUT_TOL", "OBJECTIVES", "PADDED_LAYOUT", "SEARCHES", "UNPADDED_LAYOUT",
           "export_planned", "search_stages"]
