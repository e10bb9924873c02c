"""int8 exporters: PTQ by recipe and target, the accuracy-guarded PTQ, and the dispatch to QAT and plans."""

from __future__ import annotations

from pathlib import Path

import onnx

from edgepose.errors import EdgeposeError
from edgepose.exporting.card import write_card
from edgepose.exporting.context import ExportContext
from edgepose.exporting.corrected import correct_ptq
from edgepose.exporting.objective import export_planned
from edgepose.exporting.parity import ort_predict, ort_session, parity
from edgepose.exporting.qat_export import export_qat
from edgepose.exporting.request import METHODS, range_search_mode
from edgepose.exporting.searched import search_probe_ranges, search_ptq_ranges
from edgepose.exporting.tensorrt import check_tensorrt_qdq
from edgepose.exporting.verified import export_verified
from edgepose.metrics import ACCURACY_GATE_PP
from edgepose.quantization.guard import guard_groups, guard_search
from edgepose.quantization.ptq import quantize_ptq, scheme_params
from edgepose.quantization.recipes import get_recipe
from edgepose.quantization.sensitivity import measure_groups
from edgepose.quantization.targets import get_target


def export_int8(ctx: ExportContext) -> list[Path]:
    """int8 QDQ: PTQ by recipe, QAT, the accuracy guard (``max_drop``) or a precision plan (``objective``)."""
    req = ctx.req
    method = req.method or "ptq"
    if method not in METHODS:
        raise EdgeposeError(f"unknown int8 method {method!r}; choose from {', '.join(METHODS)}")
    if req.objective is not None:
        return [export_planned(ctx)]
    if req.max_drop is not None:
        if method != "ptq":
            raise EdgeposeError(f"--max-drop searches PTQ configurations; it does not apply to --method {method}")
        return [_guarded(ctx)]
    target, recipe = get_target(req.target, req.weight_bits), get_recipe(req.recipe)
    if recipe.candidates:
        if method == "ptq" and target.name == "ort-cpu":
            # a plan needs clean validation windows (the accuracy gate) and times against the fp32 graph it
            # replaces, so not a padded one; otherwise the candidates, without a search (verified.py says why)
            if recipe.plan and not ctx.pads_channels and len(ctx.dataset.indices("val", clean=True, spec=ctx.spec)):
                return [export_planned(ctx, objective=recipe.plan, recipe=recipe.name, criterion=recipe.guard_criterion,
                                       strategy=recipe.guard_strategy)]
            if recipe.plan and ctx.pads_channels:
                req.log(f"recipe {recipe.name}: no latency plan of a padded graph (it would be timed against the padded "
                        f"fp32 graph); trying {', '.join(recipe.candidates)} as --recipe checked does (point criterion)")
            return [export_verified(ctx, recipe)]
        req.log(f"recipe {recipe.name}: timed on ONNX Runtime CPU PTQ only; {method} for {target.name} "
                f"uses {recipe.fallback}")
        recipe = get_recipe(recipe.fallback)
    if recipe.int8_groups is not None:
        if method != "ptq" or target.name != "ort-cpu":
            raise EdgeposeError(f"recipe {recipe.name!r} chooses ONNX Runtime CPU groups: PTQ with --target ort-cpu "
                                f"only (got --method {method}, --target {target.name})")
        return [_by_groups(ctx, recipe)]
    if recipe.quantize_all_ops and target.name == "tensorrt":
        raise EdgeposeError("recipe 'global' is for the ort-cpu target only (TensorRT places Q/DQ on the "
                            "inputs of weighted ops)")
    calib = ctx.calibration()
    ptq_path = ctx.work / f"{ctx.name}.int8-ptq-{req.calib}-{recipe.name}-{target.name}.onnx"
    params = quantize_ptq(ctx.int8_source_onnx(), ptq_path, calib, recipe, target, req.calib,
                          stats_model=ctx.stats_model())
    if range_search_mode(req, recipe.name) == "on":  # before bias correction: its means are of the final ranges
        params["range_search"] = search_ptq_ranges(ctx, ptq_path, calib)
    if req.bias_correction != "off":  # "-bc-" before the recipe: "…-percentile-safe" names the plain graph
        twin = ctx.work / f"{ctx.name}.int8-ptq-{req.calib}-bc-{recipe.name}-{target.name}.onnx"
        ptq_path, params["bias_correction"] = correct_ptq(ctx, ptq_path, twin, calib, req.bias_correction)
    x, y = ctx.parity_set()
    torso = ctx.dataset.layout.torso
    ref = ctx.torch_reference(x)
    if method == "ptq":
        par = parity(ref, ort_predict(ort_session(ptq_path), x), y, torso)
        card = {**ctx.base_card("int8"), "method": "ptq", "target": target.name, "recipe": params,
                "calibration": calib.describe(), "parity": {"vs_fp32_torch": par}}
        if target.name == "tensorrt":
            card["tensorrt_qdq_problems"] = check_tensorrt_qdq(onnx.load(str(ptq_path)))
        write_card(ptq_path, card)
        return [ptq_path]
    return [export_qat(ctx, ptq_path, calib, params, recipe, target, x, y, ref)]


def _by_groups(ctx: ExportContext, recipe) -> Path:
    """int8 PTQ of a group recipe: exactly the groups it names, or (guarded) those the guard keeps of them."""
    req = ctx.req
    calib = ctx.calibration()
    # a guarded recipe scores on the same validation windows as the default's guard (auto)
    probe = ctx.probe(val_windows=req.guard_val_windows if recipe.guarded else None, calib=calib,
                      threads=req.threads or 2)
    groups = recipe.int8_groups(probe.groups)
    guard = None
    if recipe.guarded:
        guard, _ = guard_groups(probe, groups, ACCURACY_GATE_PP, req.log)
        if not guard.met:
            raise EdgeposeError(f"recipe {recipe.name}: {guard.notes[0]}; nothing written", req.checkpoint)
        groups = guard.int8_groups
    path = probe.build(groups, ctx.work / f"{ctx.name}.int8-ptq-{req.calib}-{recipe.name}-{probe.target.name}.onnx")
    params = {**scheme_params(probe.target, req.calib), "recipe": recipe.name, "int8_groups": len(groups),
              "float_groups": [g.name for g in probe.groups if g.name not in set(groups)]}
    card = {**ctx.base_card("int8"), "method": "ptq", "target": probe.target.name, "recipe": params,
            "calibration": calib.describe(), "parity": {"vs_fp32_torch": ctx.parity_vs_torch(path)}}
    if guard is not None:
        card["guard"] = guard.to_dict()
    write_card(path, card)
    return path


def _guarded(ctx: ExportContext) -> Path:
    """int8 PTQ under the accuracy guard (``--max-drop``): see :mod:`edgepose.quantization.guard`."""
    req = ctx.req
    calib = ctx.calibration()
    probe = ctx.probe(val_windows=req.guard_val_windows, calib=calib)
    searched = None
    if range_search_mode(req, None) == "on":  # searched on the start graph, then every graph the guard builds uses them
        searched = search_probe_ranges(ctx, probe, probe.group_names, calib)
    req.log(f"guard: {len(probe.groups)} groups on {len(probe.x)} clean validation windows "
            f"(fp32 PCK@20 {100 * probe.reference.pck20:.2f} %), budget −{req.max_drop} pp")
    records: list = []

    def scan() -> list:
        records.extend(measure_groups(probe, req.log, sqnr=False))
        return records

    result = guard_search(probe, scan, req.max_drop, req.log, criterion=req.guard_criterion,
                          strategy=req.guard_strategy)
    if not result.met and not req.best_effort:
        raise EdgeposeError(f"{result.notes[0]}; nothing written (pass --best-effort to write the closest)",
                            req.checkpoint)
    for note in result.notes:
        req.log(f"best effort: {note}")
    tag = f"int8-ptq-{req.calib}-guard{req.max_drop:g}pp-{probe.target.name}"
    path = probe.build(result.int8_groups, ctx.work / f"{ctx.name}.{tag}.onnx")
    test = ctx.test_delta(path, probe.threads)
    guard = {**result.to_dict(), "best_effort": bool(req.best_effort and not result.met),
             "validation": {**result.to_dict()["validation"], "windows": int(len(probe.x)),
                            "fp32_pck20": probe.reference.pck20},
             "test": test, "groups": [g.to_dict() for g in probe.groups],
             "sensitivity": [{"name": r.name, "delta_pck20_pp": r.delta_pck20_pp, "delta_mpjpe": r.delta_mpjpe}
                             for r in records]}
    par = ctx.parity_vs_torch(path)
    card = {**ctx.base_card("int8"), "method": "ptq", "target": probe.target.name,
            "recipe": {**scheme_params(probe.target, req.calib), "recipe": "guard",
                       "float_groups": result.float_groups, "int8_groups": len(result.int8_groups),
                       "range_search": searched},
            "calibration": calib.describe(), "guard": guard, "parity": {"vs_fp32_torch": par}}
    if probe.target.name == "tensorrt":
        card["tensorrt_qdq_problems"] = check_tensorrt_qdq(onnx.load(str(path)))
    write_card(path, card)
    req.log(f"guard: {'within' if result.met else 'OUTSIDE'} budget — {len(result.float_groups)} group(s) float, "
            f"validation ΔPCK@20 {result.choice.delta_pck20_pp:+.2f} pp, test "
            f"{test.get('delta_pck20_pp', float('nan')):+.2f} pp")
    return path


__all__ = ["export_int8"]
