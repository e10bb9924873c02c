"""Float exporters: fp32 ONNX (batch norm folded, parity-gated) and fp16 ONNX."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from edgepose.errors import EdgeposeError
from edgepose.exporting.card import write_card
from edgepose.exporting.context import ExportContext
from edgepose.exporting.fp16 import convert_fp16
from edgepose.exporting.parity import ort_predict, ort_session, parity


def export_fp32(ctx: ExportContext) -> list[Path]:
    """The batch-norm-folded fp32 graph, gated at 1e-4 of the output scale against torch."""
    path = ctx.work / "artifact" / ctx.fp32_onnx().name
    path.parent.mkdir(exist_ok=True)
    shutil.copyfile(ctx.fp32_onnx(), path)
    x, y = ctx.parity_set()
    rand = np.random.default_rng(0).uniform(0, 1, (64, *ctx.window_shape)).astype(np.float32)
    sess = ort_session(path)
    ref_x, ref_r = ctx.torch_reference(x), ctx.torch_reference(rand)
    real = parity(ref_x, ort_predict(sess, x), y, ctx.dataset.layout.torso)
    rnd = parity(ref_r, ort_predict(sess, rand))
    # float32 rounding grows with the output's magnitude: the gate is 1e-4 of max(1, max |output|)
    scale = max(1.0, float(np.abs(ref_x).max(initial=0.0)), float(np.abs(ref_r).max(initial=0.0)))
    worst = max(real["max_abs_error"], rnd["max_abs_error"])
    real["gate"] = rnd["gate"] = 1e-4 * scale
    if worst > 1e-4 * scale:
        raise EdgeposeError(f"fp32 ONNX disagrees with torch (max abs error {worst:.2e} > {1e-4 * scale:.2e} "
                            f"= 1e-4 × max(1, max |output| {scale:.3g}))")
    write_card(path, {**ctx.base_card("fp32"), "method": "export", "recipe": {"batchnorm": "folded into convs",
               "dynamic_batch": True}, "parity": {"test_windows": real, "random_windows": rnd}})
    return [path]


def export_fp16(ctx: ExportContext) -> list[Path]:
    """fp16 weights and activations (I/O kept fp32 by default), with its parity against torch."""
    path = ctx.work / f"{ctx.name}.fp16.onnx"
    params = convert_fp16(ctx.fp32_onnx(), path, ctx.req.keep_io_types, ctx.req.fp16_block_list)
    write_card(path, {**ctx.base_card("fp16"), "method": "convert", "recipe": params,
                      "parity": {"test_windows": ctx.parity_vs_torch(path)}})
    return [path]


__all__ = ["export_fp32", "export_fp16"]
