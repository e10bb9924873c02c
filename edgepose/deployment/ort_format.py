"""ONNX Runtime format (``.ort``) for boxes that run a reduced ONNX Runtime build.

Uses ONNX Runtime's own converter (``onnxruntime.tools.convert_onnx_models_to_ort``, run as a
child process so its logging stays out of ours) with the *fixed* optimisation style, and keeps
the required-operators config it writes: the input to ONNX Runtime's ``--include_ops_by_config``
when building a minimal runtime for the box.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edgepose.errors import EdgeposeError

TARGETS = ("amd64", "arm")


def convert_to_ort(onnx_path: Path, work: Path, target: str = "amd64") -> tuple[bytes, bytes]:
    """``(model.ort bytes, required-operators config bytes)`` for ``onnx_path``, converted in ``work``."""
    if target not in TARGETS:
        raise EdgeposeError(f"unknown ORT target platform {target!r}; choose from {', '.join(TARGETS)}")
    out = work / "ort"
    cmd = [sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(onnx_path),
           "--output_dir", str(out), "--optimization_style", "Fixed", "--target_platform", target]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    model = out / (onnx_path.stem + ".ort")
    config = out / (onnx_path.stem + ".required_operators.config")
    if proc.returncode != 0 or not model.is_file() or not config.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise EdgeposeError(f"ONNX Runtime's ORT-format converter failed: {' | '.join(tail)[:400]}", onnx_path)
    # the converter names the build machine's absolute paths in comments; keep the config portable
    lines = [ln for ln in config.read_text().splitlines() if not ln.startswith("#")]
    text = "# required operators of model.ort (onnxruntime.tools.convert_onnx_models_to_ort)\n" + "\n".join(lines) + "\n"
    return model.read_bytes(), text.encode()
