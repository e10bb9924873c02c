"""JSON encoding of numpy scalars/arrays and paths: one ``default=`` for every JSON file edgepose writes.

Lives in the torch-free runtime (standard library + numpy) so the bundle reader/writer and
:mod:`edgepose.io` share it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def json_default(obj: Any) -> Any:
    """``json.dumps(..., default=json_default)``: numpy integers/floats/arrays and paths become JSON."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
