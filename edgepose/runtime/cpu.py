"""Facts about the CPU that decide int8 speed, read without importing anything heavy.

Used by export (which int8 layout suits this box), bench (recorded beside every speed figure),
``edgepose doctor`` and the torch-free edge runtime.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from pathlib import Path

#: Flags that matter for fp32/fp16/int8 inference speed, in the order they are reported.
SPEED_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8",
               "amx_bf16", "asimddp", "i8mm", "bf16")


def _cpuinfo_lines() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """CPU feature flags of this machine (Linux ``/proc/cpuinfo``, x86 ``flags`` or ARM ``Features``)."""
    for line in _cpuinfo_lines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name, or the architecture when the OS does not say."""
    for line in _cpuinfo_lines():
        if line.startswith(("model name", "Model", "Hardware")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def has_vnni() -> bool:
    """AVX-512 VNNI or AVX-VNNI: int8 dot products without the u8·s8 16-bit saturation of AVX2."""
    return bool({"avx512_vnni", "avx_vnni"} & cpu_flags())


def speed_flags() -> dict[str, bool]:
    """Each of :data:`SPEED_FLAGS` → present on this CPU."""
    flags = cpu_flags()
    return {f: f in flags for f in SPEED_FLAGS}


def cpu_summary() -> dict:
    """Model, architecture, logical cores and speed-relevant flags: recorded with every speed figure."""
    return {"cpu_model": cpu_model(), "arch": platform.machine(), "cpu_count": os.cpu_count(),
            "cpu_flags": speed_flags()}
