"""Edge deployment: build sealed ``.edgepose`` bundles and the runtime-only distribution.

The box side lives in :mod:`edgepose.runtime` (numpy + onnxruntime only); this package is the
build side and may use the whole toolkit.
"""

from __future__ import annotations

from edgepose.deployment.package import package
from edgepose.deployment.runtime_dist import write_runtime_pyz

__all__ = ["package", "write_runtime_pyz"]
