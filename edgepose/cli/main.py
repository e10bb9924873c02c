"""The ``edgepose`` command line: a thin click layer over the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .. import __version__
from ..errors import EdgeposeError


class _Group(click.Group):
    """Turns :class:`EdgeposeError` into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EdgeposeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgepose")
def cli() -> None:
    """Train, export, benchmark and deploy WiFi-CSI pose networks for edge boxes.

    \b
    Example (the whole pipeline on the embedded synthetic default):
      edgepose run --out runs/default
    """


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="edgepose")


def _register() -> None:
    from . import bench_cmd, data_cmd, export_cmd, pipeline_cmd, train_cmd  # noqa: F401  (commands attach themselves to `cli`)


def echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def path_arg(**kw):
    return click.Path(path_type=Path, **kw)


_register()

