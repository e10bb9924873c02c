"""Facts about the machine a benchmark ran on, and their one-line human form."""

from __future__ import annotations

import platform

from edgepose.runtime.cpu import cpu_summary


def machine_info() -> dict:
    """CPU model, speed-relevant flags, core count, GPU and driver, library versions."""
    import numpy
    import onnxruntime
    import torch

    info = {
        "hostname_hash": hex(abs(hash(platform.node())) % (1 << 32)),
        "platform": platform.platform(),
        **cpu_summary(),
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


def describe_machine(machine: dict, threads: int | None = None, spinning: bool | None = None,
                     parallel: str | None = None) -> str:
    """One readable line: CPU, cores, flags, peak, GPU, threads (and how a call used them) and library versions."""
    flags = ", ".join(f for f, on in machine.get("cpu_flags", {}).items() if on) or "none recognised"
    bits = [f"{machine.get('cpu_model', '?')} ({machine.get('arch', '?')}, {machine.get('cpu_count', '?')} logical cores)",
            f"flags {flags}"]
    peak = machine.get("peak")
    if peak:
        bits.append(f"peak {peak['fp32_gmacs']:.0f} GMAC/s fp32 and {peak['int8_gmacs']:.0f} GMAC/s int8 "
                    f"({peak['physical_cores']} cores × {peak['clock_ghz']:.2f} GHz × {peak['isa']})")
    gpu = machine.get("gpu")
    if gpu:
        bits.append(f"GPU {gpu['name']} ({gpu.get('memory_gib')} GiB, CUDA {gpu.get('cuda')}, driver {gpu.get('driver')})")
    if threads is not None:
        bits.append(f"threads {threads or 'runtime default'}" + ("" if spinning is None else
                                                                 f", spinning {'on' if spinning else 'off'}")
                    + ("" if parallel is None else f", ONNX Runtime CPU in {parallel} mode"))
    versions = machine.get("versions", {})
    bits.append(", ".join(f"{k} {v}" for k, v in versions.items()))
    return "; ".join(bits)


def _nvidia_driver() -> str | None:
    try:
        return open("/proc/driver/nvidia/version").readline().strip()
    except OSError:
        return None
