"""``edgepose doctor``: what a user pastes into a bug report, and what their box can run.

Versions, the CPU's instruction sets that decide int8 speed, ONNX Runtime's execution providers,
the GPU (if any), each optional extra — present, or missing with the reason and the exact install
line — and which precisions, targets and bench backends will run here and which will be skipped.
Nothing here raises for a missing component: it is reported.
"""

from __future__ import annotations

import importlib.metadata as md
import platform
import sys
from pathlib import Path

from edgepose.version import __version__
from edgepose.runtime.cpu import cpu_flags, cpu_summary

SCHEMA = "edgepose-doctor"
SCHEMA_VERSION = 1

#: distribution name → what it is for, how to install it
OPTIONAL = {
    "tensorrt": ("TensorRT engines (--engine) and the tensorrt bench backend; needs an NVIDIA GPU",
                 "pip install 'edgepose[trt]'"),
    "onnxruntime-gpu": ("ONNX Runtime CUDA / TensorRT execution providers (bench --device cuda)",
                        "pip uninstall -y onnxruntime && pip install onnxruntime-gpu"),
    "hypothesis": ("property-based tests (developers)", "pip install -e '.[dev]'"),
    "pytest": ("the test suite (developers)", "pip install -e '.[dev]'"),
}
CORE = ("numpy", "torch", "onnx", "onnxruntime", "onnxscript", "safetensors", "click", "scipy", "matplotlib", "tqdm")


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def int8_path(flags: frozenset[str]) -> dict:
    """How this CPU executes int8 dot products, and the int8:fp32 peak ratio it allows."""
    if {"amx_int8", "amx_tile"} <= flags:
        return {"isa": "AMX-INT8 (+ AVX-512 VNNI)", "int8_vs_fp32_peak": "≥ 4× (AMX tiles far beyond)", "vnni": True}
    if "avx512_vnni" in flags:
        return {"isa": "AVX-512 VNNI", "int8_vs_fp32_peak": "4×", "vnni": True}
    if "avx_vnni" in flags:
        return {"isa": "AVX-VNNI (256-bit)", "int8_vs_fp32_peak": "4×", "vnni": True}
    if "avx2" in flags:
        return {"isa": "AVX2 (u8·s8 → s16 pairs, no VNNI; 7-bit weights avoid saturation)",
                "int8_vs_fp32_peak": "2×", "vnni": False}
    if "i8mm" in flags:
        return {"isa": "Arm I8MM (+ dot product)", "int8_vs_fp32_peak": "≥ 4×", "vnni": False}
    if "asimddp" in flags:
        return {"isa": "Arm dot product (SDOT/UDOT)", "int8_vs_fp32_peak": "4×", "vnni": False}
    return {"isa": "unknown (no int8 dot-product flags found)", "int8_vs_fp32_peak": "unknown", "vnni": False}


def _gpu() -> dict:
    info: dict = {"available": False}
    driver = Path("/proc/driver/nvidia/version")
    info["driver"] = driver.read_text().splitlines()[0].strip() if driver.is_file() else None
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        info["reason"] = f"torch does not import ({type(exc).__name__}: {exc})"
        return info
    info["torch_cuda"] = torch.version.cuda
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(available=True, name=p.name, memory_gib=round(p.total_memory / 2**30, 1),
                    capability=f"{p.major}.{p.minor}", count=torch.cuda.device_count())
    elif torch.version.cuda is None:
        info["reason"] = (f"torch {torch.__version__} is a CPU-only build; install the CUDA build of torch that "
                          "matches your driver (PyTorch's own instructions)")
    elif info["driver"] is None:
        info["reason"] = "no NVIDIA driver found (/proc/driver/nvidia/version is missing)"
    else:
        info["reason"] = "torch has CUDA but sees no device (CUDA_VISIBLE_DEVICES? driver/runtime mismatch?)"
    return info


def _backends() -> dict:
    out = {}
    try:
        from edgepose.benchmarking.backends import backends_for
    except Exception as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {exc}"}
    for device in ("cpu", "cuda"):
        for be in backends_for(device):
            try:
                ok, reason = be.available()
            except Exception as exc:  # noqa: BLE001
                ok, reason = False, f"{type(exc).__name__}: {exc}"
            out[be.name] = {"device": device, "runs": bool(ok), **({"reason": reason} if not ok else {})}
    return out


def _capabilities(gpu: dict, trt_ok: bool, trt_reason: str) -> dict:
    engine = {"runs": trt_ok and gpu["available"]}
    if not engine["runs"]:
        engine["reason"] = trt_reason if not trt_ok else "TensorRT is installed but no CUDA GPU is visible"
    return {
        "export": {
            "fp32": {"runs": True}, "fp16": {"runs": True},
            "int8 ptq --target ort-cpu": {"runs": True}, "int8 qat --target ort-cpu": {"runs": True},
            "int8 ptq/qat --target tensorrt (QDQ ONNX)": {"runs": True},
            "--engine (TensorRT .plan)": engine,
        },
        "bench_backends": _backends(),
    }


def collect() -> dict:
    """The doctor report as a JSON-ready dict (schema ``edgepose-doctor`` v1)."""
    flags = cpu_flags()
    versions = {"edgepose": __version__, "python": platform.python_version(),
                **{d: _version(d) for d in CORE}}
    missing_core = [d for d in CORE if versions[d] is None]
    try:
        import onnxruntime as ort

        providers = ort.get_available_providers()
    except Exception as exc:  # noqa: BLE001
        providers = []
        missing_core.append(f"onnxruntime ({type(exc).__name__}: {exc})")
    from edgepose.exporting.tensorrt import tensorrt_available

    trt_ok, trt_reason = tensorrt_available()
    extras = {}
    for dist, (purpose, install) in OPTIONAL.items():
        v = _version(dist)
        entry = {"installed": v is not None, "version": v, "for": purpose}
        if v is None:
            entry.update(reason="not installed", install=install)
        extras[dist] = entry
    if extras["tensorrt"]["installed"] and not trt_ok:
        extras["tensorrt"].update(reason=trt_reason)
    gpu = _gpu()
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "versions": versions, "missing_core": missing_core,
            "platform": platform.platform(), "executable": sys.executable,
            "cpu": {**cpu_summary(), "int8": int8_path(flags)}, "onnxruntime_providers": providers, "gpu": gpu,
            "optional": extras, "capabilities": _capabilities(gpu, trt_ok, trt_reason)}


def format_text(report: dict) -> str:
    """A human-readable rendering of :func:`collect`."""
    v, cpu = report["versions"], report["cpu"]
    lines = ["edgepose " + v["edgepose"] + f" on Python {v['python']} ({report['platform']})",
             "versions: " + ", ".join(f"{k} {val or 'MISSING'}" for k, val in v.items() if k not in ("edgepose",
                                                                                                    "python")),
             f"cpu: {cpu['cpu_model']} ({cpu['arch']}, {cpu['cpu_count']} logical cores)",
             "  flags: " + (", ".join(f for f, on in cpu["cpu_flags"].items() if on) or "none of the speed flags"),
             f"  int8 path: {cpu['int8']['isa']}; int8 peak ≈ {cpu['int8']['int8_vs_fp32_peak']} fp32's",
             "onnxruntime providers: " + (", ".join(report["onnxruntime_providers"]) or "none"),
             "gpu: " + (f"{report['gpu']['name']} ({report['gpu']['memory_gib']} GiB)" if report["gpu"]["available"]
                        else f"none — {report['gpu'].get('reason', '')}"),
             "optional extras:"]
    for dist, e in report["optional"].items():
        lines.append(f"  {dist:16s} " + (f"{e['version']}" if e["installed"] and "install" not in e
                                          else f"missing — {e.get('reason')}; {e.get('install', '')}").rstrip("; ")
                     + f"  ({e['for']})")
    lines.append("export here:")
    for what, c in report["capabilities"]["export"].items():
        lines.append(f"  {'✓' if c['runs'] else '✗'} {what}" + ("" if c["runs"] else f" — {c['reason']}"))
    lines.append("bench backends here:")
    for name, c in report["capabilities"]["bench_backends"].items():
        if isinstance(c, dict):
            lines.append(f"  {'✓' if c['runs'] else '✗'} {name} ({c['device']})"
                         + ("" if c["runs"] else f" — {c['reason']}"))
    if report["missing_core"]:
        lines.append("MISSING core packages: " + ", ".join(report["missing_core"]))
    return "\n".join(lines)
