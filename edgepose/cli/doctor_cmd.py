"""``edgepose doctor``."""

from __future__ import annotations

import click

from edgepose.cli._options import echo_json


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (schema edgepose-doctor v1).")
def doctor_cmd(as_json: bool) -> None:
    """Report versions, CPU int8 instruction sets, providers, GPU, optional extras and what runs here.

    Paste its output into bug reports.

    \b
    Examples:
      edgepose doctor
      edgepose doctor --json > doctor.json
    """
    from edgepose.api import doctor
    from edgepose.diagnostics import format_text

    report = doctor()
    echo_json(report) if as_json else click.echo(format_text(report))


COMMANDS = [doctor_cmd]
