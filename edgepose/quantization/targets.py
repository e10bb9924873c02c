"""Deployment targets of int8 graphs: the quantization scheme each runtime executes well."""

from __future__ import annotations

from dataclasses import dataclass, field

from onnxruntime.quantization import QuantType

from edgepose.errors import EdgeposeError
from edgepose.runtime.cpu import cpu_flags, has_vnni


@dataclass(frozen=True)
class Target:
    """How an int8 graph is laid out for one runtime."""

    name: str
    activation_type: QuantType
    weight_type: QuantType
    symmetric_activations: bool
    quantize_outputs: bool
    quantize_bias: bool
    description: str
    extra: dict = field(default_factory=dict)

    def reduce_range(self) -> bool:
        """7-bit weights where u8·s8 AVX2 kernels could saturate (x86 without VNNI, ORT CPU only)."""
        return self.name == "ort-cpu" and not has_vnni() and bool(cpu_flags())

    def activation_qrange(self) -> tuple[int, int]:
        return (0, 255) if self.activation_type == QuantType.QUInt8 else (-128, 127)

    def weight_qmax(self) -> int:
        return 63 if self.reduce_range() else 127


TARGETS = {
    "ort-cpu": Target("ort-cpu", QuantType.QUInt8, QuantType.QInt8, False, True, True,
                      "ONNX Runtime CPU: u8 activations, s8 per-channel weights, int32 bias; "
                      "reduce_range on CPUs without VNNI"),
    "tensorrt": Target("tensorrt", QuantType.QInt8, QuantType.QInt8, True, False, False,
                       "TensorRT: symmetric s8/s8, Q/DQ only on the inputs of weighted ops, float bias"),
}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise EdgeposeError(f"unknown target {name!r}; choose from {', '.join(TARGETS)}")
    return TARGETS[name]
