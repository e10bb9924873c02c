"""int8 post-training quantization with ONNX Runtime's static quantizer (QDQ format)."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import onnx
from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static

from ..errors import EdgeposeError
from .calibration import CalibrationSet, OrtCalibrationReader
from .onnx_fp32 import INPUT_NAME
from .plan import Recipe, conv_nodes_by_module
from .targets import Target

#: Calibrators behind one name each (ONNX Runtime implements all three).
CALIBRATORS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
PERCENTILE = 99.999


def quantize_ptq(fp32_path: Path, out_path: Path, calib: CalibrationSet, recipe: Recipe, target: Target,
                 calibrator: str = "percentile") -> dict:
    """Write a QDQ int8 model calibrated on ``calib``; returns the recipe parameters used."""
    if calibrator not in CALIBRATORS:
        raise EdgeposeError(f"unknown calibrator {calibrator!r}; choose from {', '.join(CALIBRATORS)}")
    proto = onnx.load(str(fp32_path))
    by_module = conv_nodes_by_module(proto)
    nodes = [node for path, node in by_module.items() if not recipe.keep_float(path)]
    excluded = sorted(path for path in by_module if recipe.keep_float(path))
    extra = {
        "ActivationSymmetric": target.symmetric_activations,
        "WeightSymmetric": True,
        "QuantizeBias": target.quantize_bias,
    }
    if not target.quantize_outputs:
        extra["OpTypesToExcludeOutputQuantization"] = ["Conv"]
    if calibrator == "percentile":
        extra["CalibPercentile"] = PERCENTILE
    if calibrator == "entropy":
        extra["CalibNumBins"] = 512
    kwargs = dict(
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=target.reduce_range(),
        activation_type=target.activation_type,
        weight_type=target.weight_type,
        calibrate_method=CALIBRATORS[calibrator],
        extra_options=extra,
    )
    if recipe.quantize_all_ops:
        kwargs["nodes_to_exclude"] = []
    else:
        kwargs["op_types_to_quantize"] = ["Conv"]
        kwargs["nodes_to_quantize"] = nodes
    sink = io.StringIO()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs a pre-processing hint on the root logger
    try:
        with contextlib.redirect_stdout(sink):
            quantize_static(str(fp32_path), str(out_path), OrtCalibrationReader(calib, INPUT_NAME), **kwargs)
    finally:
        root.setLevel(level)
    return {
        "calibrator": calibrator,
        **({"percentile": PERCENTILE} if calibrator == "percentile" else {}),
        "per_channel": True,
        "reduce_range": target.reduce_range(),
        "activation_type": target.activation_type.name,
        "weight_type": target.weight_type.name,
        "symmetric_activations": target.symmetric_activations,
        "quantize_outputs": target.quantize_outputs,
        "quantize_bias": target.quantize_bias,
        "recipe": recipe.name,
        "float_convs": excluded,
        "int8_convs": len(nodes) if not recipe.quantize_all_ops else len(by_module),
    }
