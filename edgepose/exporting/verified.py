"""int8 verified on the exporting machine, without a search (``--recipe checked``; ``auto`` where no plan can be made).

A static recipe is a guess about kernels: on one CPU the ``safe`` graph is 1.4× fp32, on another
(or at two threads) it is slower. The default therefore *checks* its guess where it runs:

1. for each candidate recipe in order (:attr:`Recipe.candidates`: ``guarded`` first — int8
   everywhere except the attention blocks, and when that misses the gate, the groups that cost
   most accuracy alone put back to float until it holds — then ``safe``), build the graph from
   the same calibrated ranges and score it on clean **validation** windows; it qualifies when ΔPCK@20
   against fp32 is ≥ −``ACCURACY_GATE_PP`` (the one accuracy gate, a point estimate on validation
   as the guard and the plan use it; test only reports);
2. time it against the fp32 graph, paired (calls alternated, same process), at every requested
   batch size and thread count; it is shipped when it is **not slower than fp32 at any batch**;
3. when no candidate passes both — or the split has no clean validation windows to check the
   gate on — the artifact is the fp32 graph, labelled fp32 — honestly fp32-equivalent rather than
   a slower or unchecked int8.

Each attempt (its int8 groups, validation delta, timings and why it was or was not shipped) and
the machine it was timed on go into the card's ``verified`` record. The latency plan (the default,
``auto``, and ``--objective latency``) is the thorough version of the same idea, block by block;
``auto`` comes here only where no plan can be made: a graph with padded channels (its plan would be
timed against the padded fp32 graph, not the one it replaces) or a split without clean validation
windows (then the fp32 graph, as step 3 says).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import onnx

from edgepose.errors import EdgeposeError
from edgepose.exporting.card import write_card
from edgepose.exporting.context import ExportContext
from edgepose.exporting.tensorrt import check_tensorrt_qdq
from edgepose.metrics import ACCURACY_GATE_PP
from edgepose.quantization.guard import guard_groups
from edgepose.quantization.ptq import quantize_ptq, scheme_params
from edgepose.quantization.recipes import Recipe, get_recipe
from edgepose.quantization.targets import get_target

#: seconds of paired timing per batch size and candidate (both graphs together)
VERIFY_SECONDS = 3.0


def time_against_fp32(path: Path, fp32: Path, windows, batches, threads: int,
                      seconds: float = VERIFY_SECONDS, parallel: str = "intra") -> dict[str, dict]:
    """Per batch: median ms of ``path`` and of ``fp32``, alternated call by call, and the speedup."""
    from edgepose.quantization.planning.timer import batch_inputs, paired_medians
    from edgepose.runtime.session import OrtRunner

    sa = OrtRunner(path, threads=threads, parallel=parallel, spinning=False)
    sb = OrtRunner(fp32, threads=threads, parallel=parallel, spinning=False)
    out = {}
    for b, x in batch_inputs(windows, batches).items():
        a_ms, f_ms = paired_medians(sa.bind(x), sb.bind(x), seconds)
        out[str(b)] = {"int8_ms": a_ms, "fp32_ms": f_ms, "speedup": f_ms / a_ms}
    return out


def export_verified(ctx: ExportContext, recipe: Recipe) -> Path:
    """Try ``recipe.candidates`` as the module docstring says; write and return the shipped artifact."""
    from edgepose.runtime.cpu import cpu_summary

    req = ctx.req
    log = req.log
    t0 = time.perf_counter()
    calib = ctx.calibration()
    if not len(ctx.dataset.indices("val", clean=True, spec=ctx.spec)):
        # nothing to check the accuracy gate on: the default must not ship an unchecked int8 graph,
        # and must not fail either (a tiny split is a supported input) — fp32, labelled and explained
        why = (f"{ctx.dataset.path}: the split has no clean validation windows to check int8 accuracy on; "
               "--recipe safe exports int8 without that check")
        log(f"int8 {recipe.name}: {why} — the artifact is the fp32 graph")
        target = get_target(req.target, req.weight_bits).name
        verified = {"candidates": list(recipe.candidates), "gate_pp": ACCURACY_GATE_PP, "batches": list(req.batches),
                    "threads": req.threads, "parallel": req.parallel, "machine": cpu_summary(), "validation_windows": 0, "attempts": [],
                    "why": why}
        return _ship_fp32(ctx, recipe.name, target, calib, verified, t0)
    probe = ctx.probe(val_windows=req.guard_val_windows, calib=calib, threads=req.threads or 2)
    fp32 = Path(ctx.fp32_onnx())
    log(f"int8 {recipe.name}: {len(probe.groups)} groups, {len(probe.x)} clean validation windows (fp32 PCK@20 "
        f"{100 * probe.reference.pck20:.2f} %), gate −{ACCURACY_GATE_PP:g} pp, timed at batch "
        f"{', '.join(map(str, req.batches))}, threads {req.threads or 'default'} ({req.parallel} mode)")
    attempts: list[dict] = []
    chosen: tuple[str, Path, dict] | None = None
    for name in recipe.candidates:
        cand = get_recipe(name)
        path = ctx.work / f"{ctx.name}.int8-ptq-{req.calib}-{name}-{probe.target.name}.onnx"
        guard = None
        if cand.guarded:
            try:
                guard, scanned = guard_groups(probe, cand.int8_groups(probe.groups), ACCURACY_GATE_PP, log)
            except EdgeposeError as exc:  # e.g. no int8 convolution or matmul in the recipe's groups
                attempts.append({"recipe": name, "shipped": False, "why": f"not buildable here: {exc}"})
                log(f"int8 {recipe.name}: {name}: no ({exc})")
                continue
            start = guard.steps[0]  # the recipe's own groups, before anything was restored
            rec = {"recipe": name, "guard": {"met": guard.met, "strategy": guard.strategy,
                                              "graphs_scored": len(guard.steps), "groups_scanned": len(scanned),
                                              "start_validation_delta_pck20_pp": start.delta_pck20_pp}}
            if not guard.met:  # nothing within the gate: rejected without building the closest graph
                rec.update(shipped=False, validation={"delta_pck20_pp": guard.choice.delta_pck20_pp,
                                                      "delta_mpjpe": guard.choice.delta_mpjpe},
                           why=f"no graph of its groups is within the gate on validation ({guard.notes[0]})")
                attempts.append(rec)
                log(f"int8 {recipe.name}: {name}: no ({rec['why']})")
                continue
            rec["guard"]["restored"] = guard.float_groups
            groups = guard.int8_groups
        elif cand.int8_groups is not None:
            groups = cand.int8_groups(probe.groups)
        if cand.int8_groups is not None:
            probe.build(groups, path)
            params = {**scheme_params(probe.target, req.calib), "recipe": name, "int8_groups": len(groups),
                      "float_groups": [g.name for g in probe.groups if g.name not in set(groups)]}
        else:
            params = quantize_ptq(ctx.int8_source_onnx(), path, calib, cand, probe.target, req.calib,
                                  stats_model=ctx.stats_model())
        # the guard has scored exactly this graph on the same windows
        dp, dm = (guard.choice.delta_pck20_pp, guard.choice.delta_mpjpe) if guard else probe.delta(probe.score(path))
        if guard is None:
            rec = {"recipe": name}
        else:
            params["guard_restored"] = guard.float_groups
        rec["validation"] = {"delta_pck20_pp": dp, "delta_mpjpe": dm}
        if not dp >= -ACCURACY_GATE_PP:  # NaN is outside too
            rec["shipped"], rec["why"] = False, f"validation ΔPCK@20 {dp:+.2f} pp is outside the gate"
        else:
            rec["speed"] = time_against_fp32(path, fp32, probe.x, req.batches, req.threads, parallel=req.parallel)
            slow = [b for b, v in rec["speed"].items() if v["speedup"] < 1.0]
            rec["shipped"] = not slow
            rec["why"] = ("within the gate and not slower than fp32 at any batch" if not slow
                          else f"slower than fp32 at batch {', '.join(slow)}")
        attempts.append(rec)
        speed = ", ".join(f"b{b} {v['speedup']:.2f}×" for b, v in rec.get("speed", {}).items())
        log(f"int8 {recipe.name}: {name}: validation ΔPCK@20 {dp:+.2f} pp{'; ' + speed if speed else ''} → "
            f"{'ship' if rec['shipped'] else 'no'} ({rec['why']})")
        if rec["shipped"]:
            chosen = (name, path, params)
            break
        path.unlink(missing_ok=True)

    verified = {"candidates": list(recipe.candidates), "gate_pp": ACCURACY_GATE_PP, "batches": list(req.batches),
                "threads": req.threads, "parallel": req.parallel, "machine": cpu_summary(),
                "validation_windows": int(len(probe.x)),
                "fp32_val_pck20": probe.reference.pck20, "attempts": attempts}
    if chosen is None:
        log(f"int8 {recipe.name}: no candidate was within the gate and not slower than fp32 here — the artifact "
            "is the fp32 graph")
        return _ship_fp32(ctx, recipe.name, probe.target.name, calib, verified, t0)
    name, out, params = chosen
    card = {**ctx.base_card("int8"), "method": "ptq", "target": probe.target.name,
            "recipe": {**params, "recipe": recipe.name, "chosen": name}, "calibration": calib.describe()}
    if probe.target.name == "tensorrt":
        card["tensorrt_qdq_problems"] = check_tensorrt_qdq(onnx.load(str(out)))
    return _finish(ctx, out, card, verified, t0)


def _ship_fp32(ctx: ExportContext, recipe: str, target: str, calib, verified: dict, t0: float) -> Path:
    """The honest fallback: the fp32 graph, labelled fp32, with why in its card."""
    out = ctx.work / f"{ctx.name}.fp32-{recipe}-{target}.onnx"
    shutil.copyfile(ctx.fp32_onnx(), out)
    card = {**ctx.base_card("fp32"), "method": "export", "target": target,
            "recipe": {"recipe": recipe, "chosen": "fp32"}, "calibration": calib.describe()}
    return _finish(ctx, out, card, verified, t0)


def _finish(ctx: ExportContext, out: Path, card: dict, verified: dict, t0: float) -> Path:
    """Score the shipped graph on test and against torch, write its card, return it."""
    verified["seconds"] = time.perf_counter() - t0
    card["verified"] = verified
    card["test"] = ctx.test_delta(out, ctx.req.threads or 2)
    card["parity"] = {"vs_fp32_torch": ctx.parity_vs_torch(out)}
    write_card(out, card)
    ctx.req.log(f"int8 {card['recipe']['recipe']}: shipped {card['recipe']['chosen']}; test ΔPCK@20 "
                f"{card['test']['delta_pck20_pp']:+.2f} pp; {verified['seconds']:.0f} s")
    return out


__all__ = ["VERIFY_SECONDS", "export_verified", "time_against_fp32"]
