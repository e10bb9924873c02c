"""Deployment targets of int8 graphs: the quantization scheme each runtime executes well.

**Weight range of ``ort-cpu`` (``weight_bits``).** ONNX Runtime's x86 u8·s8 GEMM on CPUs without
VNNI multiplies with AVX2's ``vpmaddubsw``, which adds each pair of u8·s8 products into a
*saturating* int16 (2·255·127 > 32767); VNNI's ``vpdpbusd`` accumulates straight into int32. With
7-bit weights (ONNX Runtime's ``reduce_range``: int8 weights in [−64, 64]) no pair can saturate
(2·255·64 = 32640 ≤ 32767), so the integer results — and the outputs — are the same on every x86
CPU. ``weight_bits``:

* ``"8"``: full 8-bit weights (the default) — more precise; exact on CPUs with VNNI and on ARM, but
  an x86 CPU without VNNI may saturate, so the card marks the artifact not ISA-portable and
  ``verify`` warns on such a CPU;
* ``"7"``: 7-bit weights, ISA-portable: the same integers on every CPU, at an accuracy cost
  measured in ``benchmarks/results/isa-numerics-*.json``;
* ``"auto"``: the old rule — 7-bit when the *exporting* CPU is x86 without VNNI, else 8-bit. The
  artifact then depends on the box it was exported on.

The choice is made at export and recorded in the card (:func:`weight_scheme`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from onnxruntime.quantization import QuantType

from edgepose.errors import EdgeposeError
from edgepose.runtime.cpu import cpu_flags, has_vnni

#: ``--weight-bits`` choices.
WEIGHT_BITS = ("auto", "7", "8")
#: What an export uses when not told (``ExportRequest.weight_bits``).
DEFAULT_WEIGHT_BITS = "8"


def check_weight_bits(bits: object, target: str = "ort-cpu") -> str:
    """``bits`` as one of :data:`WEIGHT_BITS` (ints accepted), or an :class:`EdgeposeError`."""
    text = str(bits)
    if text not in WEIGHT_BITS:
        raise EdgeposeError(f"unknown weight bits {bits!r}; choose from {', '.join(WEIGHT_BITS)}")
    if text == "7" and target == "tensorrt":
        raise EdgeposeError("--weight-bits 7 applies to the ort-cpu target (TensorRT runs symmetric s8·s8 "
                            "without u8·s8 saturation): use --weight-bits 8 or auto")
    return text


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
    #: one of :data:`WEIGHT_BITS`; only ``ort-cpu`` ever uses 7-bit weights.
    weight_bits: str = "auto"

    def reduce_range(self) -> bool:
        """7-bit weights (ONNX Runtime's ``reduce_range``): see the module docstring."""
        if self.name != "ort-cpu":
            return False
        if self.weight_bits == "auto":
            return not has_vnni() and bool(cpu_flags()) and _x86()
        return self.weight_bits == "7"

    def activation_qrange(self) -> tuple[int, int]:
        return (0, 255) if self.activation_type == QuantType.QUInt8 else (-128, 127)

    def weight_qmax(self) -> int:
        return 63 if self.reduce_range() else 127

    def isa_portable(self) -> bool:
        """Integer results identical on every CPU ONNX Runtime runs this layout on."""
        return self.name != "ort-cpu" or self.reduce_range()


def _x86() -> bool:
    import platform

    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def weight_scheme(target: Target) -> dict:
    """The card fields recording the weight range chosen and whether the artifact is ISA-portable."""
    rr = target.reduce_range()
    out = {"weight_bits_option": target.weight_bits, "weight_bits": 7 if rr else 8,
           "isa_portable": target.isa_portable()}
    if target.weight_bits == "auto" and target.name == "ort-cpu":
        out["weight_bits_decided_by"] = "exporting CPU " + ("without" if rr else "with") + " VNNI"
    if not out["isa_portable"]:
        out["portability_note"] = ("8-bit weights: exact on CPUs with VNNI (avx512_vnni/avx_vnni) and on ARM; "
                                   "not portable to AVX2-only x86 CPUs, where ONNX Runtime's u8·s8 kernel "
                                   "saturates pairs of products to int16")
    return out


TARGETS = {
    "ort-cpu": Target("ort-cpu", QuantType.QUInt8, QuantType.QInt8, False, True, True,
                      "ONNX Runtime CPU: u8 activations, s8 per-channel weights (7-bit by default, "
                      "--weight-bits), int32 bias"),
    "tensorrt": Target("tensorrt", QuantType.QInt8, QuantType.QInt8, True, False, False,
                       "TensorRT: symmetric s8/s8, Q/DQ only on the inputs of weighted ops, float bias"),
}


def get_target(name: str, weight_bits: object = DEFAULT_WEIGHT_BITS) -> Target:
    """The target ``name`` with the weight range ``weight_bits`` (:data:`WEIGHT_BITS`)."""
    if name not in TARGETS:
        raise EdgeposeError(f"unknown target {name!r}; choose from {', '.join(TARGETS)}")
    bits = check_weight_bits(weight_bits, "ort-cpu")
    if name != "ort-cpu":
        bits = "8" if bits == "7" else bits
    return replace(TARGETS[name], weight_bits=bits)
