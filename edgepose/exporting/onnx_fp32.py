"""Torch → ONNX fp32: BatchNorm folded, dynamic batch axis, checked and shape-inferred."""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import logging
import warnings
from collections import OrderedDict
from pathlib import Path

import onnx
import torch
from torch import nn

from edgepose.errors import EdgeposeError
from edgepose.io import atomic_path

from edgepose.runtime.session import INPUT_NAME  # noqa: E402  (one name for the graph input)
OUTPUT_NAME = "keypoints"
DEFAULT_OPSET = 18


#: graphs exported in this process, by :func:`model_key` (the main job exports the same fp32 graph for
#: every artifact it makes, and the exporter takes seconds per call)
_EXPORTED: "OrderedDict[str, bytes]" = OrderedDict()
_KEEP_EXPORTED = 8

_PLAIN = (bool, int, float, str, tuple, list, type(None))


def model_key(model: nn.Module, window_shape: tuple[int, int], opset: int) -> str:
    """A digest of everything the exported graph depends on.

    The module tree (its repr, each module's class and plain attributes — flags and sizes that
    ``forward`` reads), every parameter and buffer (name, shape, dtype, bytes), the input shape,
    the opset and the torch version.
    """
    h = hashlib.sha256(f"{tuple(window_shape)}|{opset}|{torch.__version__}|{model!r}".encode())
    for name, mod in model.named_modules():
        attrs = sorted((k, repr(v)) for k, v in vars(mod).items() if not k.startswith("_") and isinstance(v, _PLAIN))
        h.update(f"{name}|{type(mod).__module__}.{type(mod).__qualname__}|{attrs}|{getattr(mod, 'cfg', None)!r}".encode())
    for name, t in itertools.chain(model.named_parameters(), model.named_buffers()):
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _write(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def export_onnx(model: nn.Module, path: Path, window_shape: tuple[int, int], opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Export an eval-mode model to ``path`` with a dynamic batch axis; returns the checked proto.

    Uses the ``torch.export``-based exporter, which produces a static, shape-clean graph (no
    ``Shape``/``If`` chains around the dynamic batch) and constant-folds what it can. A model this
    process has already exported (same :func:`model_key`) gets the same bytes without exporting again.
    """
    model = model.eval()
    key = model_key(model, window_shape, opset)
    if key in _EXPORTED:
        _EXPORTED.move_to_end(key)
        data = _EXPORTED[key]
        _write(path, data)
        return onnx.load_from_string(data)
    example = torch.zeros(2, *window_shape)
    batch = torch.export.Dim("batch", min=1, max=4096)
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(
                model, (example,), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},), optimize=True, verbose=False,
            )
        except Exception as exc:  # the exporter raises many types; surface one clear message
            raise EdgeposeError(f"ONNX export failed: {type(exc).__name__}: {str(exc)[:400]}") from None
    proto = program.model_proto
    proto.producer_name = "edgepose"
    proto = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    _write(path, data)
    _EXPORTED[key] = data
    while len(_EXPORTED) > _KEEP_EXPORTED:
        _EXPORTED.popitem(last=False)
    return proto
