"""The runtime's error types: subclasses of :class:`edgepose.errors.EdgeposeError`.

``edgepose.errors`` is plain Python (pathlib only), so the torch-free runtime shares the one
error type every edgepose command turns into a single line naming the file and the problem:
``python -m edgepose.runtime`` prints exactly what ``edgepose infer``/``verify`` print.
"""

from __future__ import annotations

from edgepose.errors import EdgeposeError


class BundleError(EdgeposeError):
    """A bundle that is damaged, tampered with, unsafe to extract or not a bundle at all."""


class InputError(EdgeposeError):
    """Input the predictor cannot take: wrong rank, shape or dtype, or an unreadable file."""


__all__ = ["BundleError", "EdgeposeError", "InputError"]
