"""The one exception type the CLI turns into a clean, single-line message."""

from __future__ import annotations

from pathlib import Path


class EdgeposeError(Exception):
    """A problem the user can fix: bad input file, unknown name, mismatched artifact.

    The message names the file (when there is one) and the problem; the CLI prints it without a
    traceback and exits non-zero.
    """

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)
