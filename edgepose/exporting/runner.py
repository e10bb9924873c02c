"""One export request from start to finish: validate, load, dispatch by precision, write atomically.

:func:`export` dispatches through :data:`PRECISIONS` (a registry, not an if-chain). Every artifact
is written beside a JSON card in a work folder inside ``req.out`` and moved into place only when
complete; a failure (or SIGTERM) leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from edgepose.exporting.card import write_card
from edgepose.exporting.context import ExportContext
from edgepose.exporting.float_exporters import export_fp16, export_fp32
from edgepose.exporting.int8_exporters import export_int8
from edgepose.exporting.request import ExportRequest, validate
from edgepose.exporting.tensorrt import build_engine
from edgepose.interrupt import terminate_as_interrupt
from edgepose.training.checkpoint import load_checkpoint
from edgepose.zoo import resolve_checkpoint

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: precision → exporter. Each returns the artifact paths it wrote into the work folder.
PRECISIONS: dict[str, Callable[[ExportContext], list[Path]]] = {
    "fp32": export_fp32,
    "fp16": export_fp16,
    "int8": export_int8,
}


def export(req: ExportRequest) -> list[Path]:
    """Run one export request; returns the final artifact paths in ``req.out``."""
    validate(req, PRECISIONS)
    req.checkpoint = resolve_checkpoint(req.checkpoint)
    model, card = load_checkpoint(req.checkpoint)
    req.out.mkdir(parents=True, exist_ok=True)
    with terminate_as_interrupt():  # SIGTERM unwinds like Ctrl-C: the work folder is removed
        return _export_into(req, model, card)


def _export_into(req: ExportRequest, model: "torch.nn.Module", card: dict) -> list[Path]:
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=req.out))
    try:
        ctx = ExportContext(req, model, card, work)
        paths = PRECISIONS[req.precision](ctx)
        if req.engine:
            plan = paths[0].with_suffix(".plan")
            info = build_engine(paths[0], plan, ctx.window_shape)
            write_card(plan, {**ctx.base_card(req.precision), "method": "tensorrt-engine",
                              "source_onnx": paths[0].name, "recipe": info})
            paths.append(plan)
        final = []
        for p in paths:
            for f in (p, p.with_name(p.name + ".json")):
                os.replace(f, req.out / f.name)
            final.append(req.out / p.name)
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


__all__ = ["PRECISIONS", "export"]
