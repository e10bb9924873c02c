"""The runtime-only distribution: one ``edgepose-runtime.pyz`` file for boxes.

A zipapp (PEP 441) holding ``edgepose/runtime/``, ``edgepose/errors.py``, ``edgepose/interrupt.py``
and a minimal ``edgepose/__init__.py`` (the version only), with ``python edgepose-runtime.pyz``
running ``python -m edgepose.runtime``. It needs Python ≥ 3.10 with ``numpy`` and
``onnxruntime`` — nothing else of edgepose's dependencies — and no ``pip install`` of edgepose.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

from edgepose.version import __version__
from edgepose.io import atomic_path

_MAIN = ("import sys\nfrom edgepose.runtime.__main__ import main\nsys.exit(main())\n")
_INIT = ('"""edgepose runtime-only distribution (numpy + onnxruntime); see docs/deploy.md."""\n\n'
         '__version__ = "{version}"\n')
#: Modules outside edgepose/runtime that the runtime imports (all standard library only).
_EXTRA = ("errors.py", "interrupt.py")


def runtime_files() -> dict[str, bytes]:
    """Archive name → bytes of every file the runtime-only distribution holds."""
    root = Path(__file__).resolve().parents[1]
    files = {"__main__.py": _MAIN.encode(), "edgepose/__init__.py": _INIT.format(version=__version__).encode()}
    for name in _EXTRA:
        files[f"edgepose/{name}"] = (root / name).read_bytes()
    for path in sorted((root / "runtime").rglob("*.py")):
        files[f"edgepose/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    return files


def write_runtime_pyz(out: Path, interpreter: str | None = "/usr/bin/env python3") -> Path:
    """Write the runtime zipapp to ``out`` atomically (executable when ``interpreter`` is set)."""
    out = Path(out)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            if interpreter:
                f.write(b"#!" + interpreter.encode() + b"\n")
            with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as zf:
                for name, data in runtime_files().items():
                    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = (stat.S_IFREG | 0o644) << 16
                    zf.writestr(info, data)
    if interpreter:
        out.chmod(0o755)
    return out
