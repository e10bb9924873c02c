"""The package version, and the tool versions recorded in every card edgepose writes."""

from __future__ import annotations

import importlib
import platform

__version__ = "0.2.0"


def tool_versions(*packages: str) -> dict[str, str]:
    """``{"edgepose": …, <package>: …, "python": …}`` for the named (importable) packages, in that order."""
    out = {"edgepose": __version__}
    for name in packages:
        out[name] = str(importlib.import_module(name).__version__)
    out["python"] = platform.python_version()
    return out
