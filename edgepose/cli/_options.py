"""Small helpers shared by the command modules (nothing here imports the command group)."""

from __future__ import annotations

import json
from pathlib import Path

import click


def echo_json(data) -> None:
    """Print ``data`` as indented JSON (paths and other objects as strings)."""
    click.echo(json.dumps(data, indent=2, default=str))


def path_arg(**kw) -> click.Path:
    """A ``click.Path`` that yields :class:`pathlib.Path`."""
    return click.Path(path_type=Path, **kw)


def batches_option(_ctx, _param, value: str) -> tuple[int, ...]:
    """Parse ``"1,64"`` into ``(1, 64)``; positive integers only."""
    try:
        out = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not out or min(out) < 1:
        raise click.BadParameter("batch sizes must be positive")
    return out
