"""int8 post-training quantization: our batch-independent calibrators, ONNX Runtime's QDQ writer.

The activation ranges come from :mod:`edgepose.quantization.calibrators`; they are handed to
``quantize_static`` as its calibration cache, so the QDQ placement, scales and zero points are
computed by ONNX Runtime's own quantizer from ranges we control.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static
from onnxruntime.quantization.calibrate import TensorData, TensorsData, save_tensors_data

from edgepose.errors import EdgeposeError
from edgepose.quantization.calibration import CalibrationSet
from edgepose.quantization.calibrators import CALIBRATORS, DEFAULT_PERCENTILE, compute_ranges, get_calibrator
from edgepose.quantization.recipes import Recipe, conv_nodes_by_module
from edgepose.quantization.targets import Target, weight_scheme

#: How ONNX Runtime labels each of our calibrators in its cache (the label is checked, not used).
_ORT_METHOD = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
PERCENTILE = DEFAULT_PERCENTILE

__all__ = ["CALIBRATORS", "PERCENTILE", "check_quantizer", "quantize_nodes", "quantize_ptq", "ranges_to_tensors_data",
           "scheme_params"]


def ranges_to_tensors_data(ranges: dict[str, tuple[float, float]], calibrator: str) -> TensorsData:
    """Our ranges as ONNX Runtime's ``TensorsData``."""
    return TensorsData(_ORT_METHOD[calibrator], {
        name: TensorData(lowest=np.float32(lo), highest=np.float32(hi)) for name, (lo, hi) in ranges.items()})


def quantize_ptq(fp32_path: Path, out_path: Path, calib: CalibrationSet, recipe: Recipe, target: Target,
                 calibrator: str = "percentile", chunk: int = 64, stats_model: Path | None = None) -> dict:
    """Write a QDQ int8 model calibrated on ``calib``; returns the recipe parameters used.

    ``chunk`` (windows per calibration inference) changes memory use only, never the ranges.
    ``stats_model``: the graph the activation statistics are collected on (see
    :func:`~edgepose.quantization.calibrators.compute_ranges`).
    """
    get_calibrator(calibrator)
    check_quantizer()
    proto = onnx.load(str(fp32_path))
    by_module = conv_nodes_by_module(proto)
    nodes = [node for path, node in by_module.items() if not recipe.keep_float(path)]
    excluded = sorted(path for path in by_module if recipe.keep_float(path))
    ranges = compute_ranges(fp32_path, calib.windows, calibrator, symmetric=target.symmetric_activations,
                            chunk=chunk, stats_model=stats_model)
    if recipe.quantize_all_ops:
        quantize_nodes(fp32_path, out_path, ranges, target, calibrator, nodes=None, op_types=None)
    else:
        quantize_nodes(fp32_path, out_path, ranges, target, calibrator, nodes=nodes, op_types=["Conv"])
    return {
        **scheme_params(target, calibrator),
        "bias_correction": None,
        "range_search": None,
        "recipe": recipe.name,
        "float_convs": excluded,
        "int8_convs": len(nodes) if not recipe.quantize_all_ops else len(by_module),
    }


def check_quantizer() -> None:
    """Stop early when ONNX Runtime's quantizer cannot take a calibration cache."""
    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        import onnxruntime

        raise EdgeposeError(f"onnxruntime {onnxruntime.__version__} is too old for edgepose's calibrators "
                            "(quantize_static needs calibration_cache_path): pip install -U onnxruntime")


def scheme_params(target: Target, calibrator: str) -> dict:
    """The card fields describing the calibrator and the target's int8 scheme."""
    return {
        "calibrator": calibrator,
        "calibrator_definition": CALIBRATORS[calibrator].description,
        **({"percentile": PERCENTILE} if calibrator == "percentile" else {}),
        "per_channel": True,
        "reduce_range": target.reduce_range(),
        **weight_scheme(target),
        "activation_type": target.activation_type.name,
        "weight_type": target.weight_type.name,
        "symmetric_activations": target.symmetric_activations,
        "quantize_outputs": target.quantize_outputs,
        "quantize_bias": target.quantize_bias,
    }


def quantize_nodes(fp32_path: Path, out_path: Path, ranges: dict[str, tuple[float, float]], target: Target,
                   calibrator: str, nodes: list[str] | None, op_types: list[str] | None) -> None:
    """Write a QDQ model of ``fp32_path`` from precomputed activation ``ranges``.

    ``nodes``: the node names to quantize (``None``: every node of ``op_types``); ``op_types``:
    the op types ONNX Runtime may quantize (``None``: every type it knows). Calibrating once and
    quantizing many node sets is what the sensitivity scan and the accuracy guard do.
    """
    extra = {
        "ActivationSymmetric": target.symmetric_activations,
        "WeightSymmetric": True,
        "QuantizeBias": target.quantize_bias,
    }
    if not target.quantize_outputs:
        extra["OpTypesToExcludeOutputQuantization"] = ["Conv", "MatMul"]
    kwargs = dict(
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=target.reduce_range(),
        activation_type=target.activation_type,
        weight_type=target.weight_type,
        calibrate_method=_ORT_METHOD[calibrator],
        extra_options=extra,
    )
    if op_types is not None:
        kwargs["op_types_to_quantize"] = list(op_types)
    if nodes is None:
        kwargs["nodes_to_exclude"] = []
    else:
        kwargs["nodes_to_quantize"] = list(nodes)
    sink = io.StringIO()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs a pre-processing hint on the root logger
    try:
        with tempfile.TemporaryDirectory(prefix="edgepose-calib-") as tmp:
            cache = Path(tmp) / "ranges.json"
            save_tensors_data(ranges_to_tensors_data(ranges, calibrator), cache)
            with contextlib.redirect_stdout(sink):
                quantize_static(str(fp32_path), str(out_path), None, calibration_cache_path=str(cache), **kwargs)
    finally:
        root.setLevel(level)
