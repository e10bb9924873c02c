"""int8 QAT export: fine-tune a fake-quant simulation of the PTQ graph, ship it as QDQ ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch

from edgepose.evaluation import torch_predictor
from edgepose.exporting.card import write_card
from edgepose.exporting.context import ExportContext
from edgepose.exporting.fold import fold_batchnorm
from edgepose.exporting.onnx_fp32 import export_onnx
from edgepose.exporting.parity import ort_predict, ort_session, parity
from edgepose.exporting.tensorrt import check_tensorrt_qdq
from edgepose.quantization.calibration import CalibrationSet
from edgepose.quantization.qat import build_qat_model, finetune
from edgepose.quantization.qat_graph import build_graph_qat
from edgepose.quantization.qdq import insert_qdq
from edgepose.quantization.recipes import Recipe
from edgepose.quantization.targets import Target


def export_qat(ctx: ExportContext, ptq_path: Path, calib: CalibrationSet, params: dict, recipe: Recipe,
               target: Target, x: np.ndarray, y: np.ndarray, ref: np.ndarray) -> Path:
    """Fine-tune a fake-quant simulation of the PTQ graph and export it as QDQ ONNX.

    Recipes that quantize only convolutions use the conv-level simulation over torch modules
    (:mod:`edgepose.quantization.qat`); recipes that quantize every op (``global``) put Q/DQ pairs on
    tensors with no torch module, so they are fine-tuned on the PTQ graph itself, interpreted in
    torch (:mod:`edgepose.quantization.qat_graph`).
    """
    req = ctx.req
    folded = fold_batchnorm(ctx.model)
    fp32_proto, ptq_proto = onnx.load(str(ctx.fp32_onnx())), onnx.load(str(ptq_path))
    if recipe.quantize_all_ops:
        qat = build_graph_qat(ptq_proto, fp32_proto, {n for n, _ in folded.named_parameters()})
        counts = qat.count()
        what = (f"the PTQ graph ({counts['activations']} activation, {counts['weights']} weight and "
                f"{counts['biases']} bias fake-quants)")
        simulation = {"simulation": "graph", **counts}
    else:
        qat = build_qat_model(folded, fp32_proto, ptq_proto, recipe, target)
        what = f"{len(qat.wrappers)} fake-quant convs"
        simulation = {"simulation": "modules", "convs": len(qat.wrappers)}
    with torch.no_grad():
        before = torch_predictor(qat.fake)(x)
    req.log(f"QAT: fine-tuning {what} for {req.qat_epochs} epoch(s), lr {req.qat_lr}, "
            f"loss {req.qat_loss}, on {req.qat_device}")
    history = finetune(qat, ctx.dataset, ctx.spec, req.qat_epochs, req.qat_lr, seed=req.calib_seed,
                       max_windows=req.qat_max_windows, loss=req.qat_loss, teacher=fold_batchnorm(ctx.model),
                       device=req.qat_device, select=req.qat_select, schedule=req.qat_schedule, log=req.log)
    if recipe.quantize_all_ops:
        qdq = qat.to_qdq()
    else:
        fp32_tuned = ctx.work / "qat-float.onnx"
        export_onnx(qat.inner, fp32_tuned, ctx.window_shape, req.opset)
        proto = onnx.load(str(fp32_tuned))
        qdq = insert_qdq(proto, qat.export_plan(proto, target))
    path = ctx.work / f"{ctx.name}.int8-qat-{recipe.name}-{target.name}.onnx"
    onnx.save(qdq, str(path))
    with torch.no_grad():
        fake = torch_predictor(qat.fake)(x)
    shipped = ort_predict(ort_session(path), x)
    torso = ctx.dataset.layout.torso
    gate = parity(fake, shipped, y, torso)
    card = {**ctx.base_card("int8"), "method": "qat", "target": target.name,
            "recipe": {**params, "calibrator_init": req.calib, "qat_epochs": req.qat_epochs, "qat_lr": req.qat_lr,
                       "qat_loss": req.qat_loss, "qat_schedule": req.qat_schedule, "selection": f"validation {req.qat_select}, start included",
                       "activation_scales": "frozen from PTQ calibration",
                       "weight_scales": "max|w|/qmax, frozen at export" + (
                           "; other quantized constants on their frozen PTQ grid" if recipe.quantize_all_ops else ""),
                       **simulation},
            "calibration": calib.describe(), "history": history,
            "parity": {"fake_quant_vs_onnx_int8": gate, "vs_fp32_torch": parity(ref, shipped, y, torso),
                       "fake_quant_before_finetune_vs_fp32": parity(ref, before, y, torso)}}
    if target.name == "tensorrt":
        card["tensorrt_qdq_problems"] = check_tensorrt_qdq(qdq)
    write_card(path, card)
    return path


__all__ = ["export_qat"]
