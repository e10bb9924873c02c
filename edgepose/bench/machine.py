"""Facts about the machine a benchmark ran on."""

from __future__ import annotations

import os
import platform

from ..runtime.cpu import cpu_flags, cpu_model


def machine_info() -> dict:
    """CPU model and int8-relevant flags, core count, GPU and driver, library versions."""
    import numpy
    import onnxruntime
    import torch

    flags = cpu_flags()
    info = {
        "hostname_hash": hex(abs(hash(platform.node())) % (1 << 32)),
        "platform": platform.platform(),
        "arch": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": {f: f in flags for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                                              "amx_int8", "f16c")},
        "versions": {"python": platform.python_version(), "numpy": numpy.__version__, "torch": torch.__version__,
                     "onnxruntime": onnxruntime.__version__},
        "ort_providers": onnxruntime.get_available_providers(),
        "gpu": None,
    }
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info["gpu"] = {"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
                       "capability": f"{p.major}.{p.minor}", "cuda": torch.version.cuda,
                       "driver": _nvidia_driver()}
    try:
        import tensorrt

        info["versions"]["tensorrt"] = tensorrt.__version__
    except Exception:
        pass
    return info


def _nvidia_driver() -> str | None:
    try:
        return open("/proc/driver/nvidia/version").readline().strip()
    except OSError:
        return None
