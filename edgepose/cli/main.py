"""The ``edgepose`` command line: a thin click layer over the library.

This module builds the group and adds the commands; the command modules import nothing from
here. Exit codes: 0 success, 1 a failed check (e.g. ``verify``), 2 bad input or usage (one line
naming the file and the problem), 3 an internal error (one line + the path of a log holding the
traceback; ``--debug`` or ``EDGEPOSE_DEBUG=1`` prints the traceback instead).
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import tempfile
import traceback
from pathlib import Path

import click

from edgepose.version import __version__
from edgepose.errors import EdgeposeError

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


def _debug_enabled(ctx: click.Context | None) -> bool:
    env = os.environ.get("EDGEPOSE_DEBUG", "").strip().lower() not in ("", "0", "false", "no")
    return env or bool(ctx is not None and ctx.obj and ctx.obj.get("debug"))


def _write_crash_log(step: str) -> Path:
    """Write the current exception's traceback to a log file and return its path."""
    folder = Path(os.environ.get("EDGEPOSE_LOG_DIR") or Path(tempfile.gettempdir()) / "edgepose-logs")
    folder.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"crash-{stamp}-{os.getpid()}.log"
    path.write_text(f"edgepose {__version__}\ncommand: {' '.join(sys.argv)}\nstep: {step}\n\n"
                    + traceback.format_exc())
    return path


class _Group(click.Group):
    """Catches every error once, at the top: bad input → exit 2, anything unexpected → exit 3."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EdgeposeError as exc:
            if _debug_enabled(ctx):
                traceback.print_exc()
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("edgepose: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001  (the one place that catches everything)
            step = ctx.invoked_subcommand or "edgepose"
            if _debug_enabled(ctx):
                traceback.print_exc()
                click.echo(f"edgepose: internal error while {step}: {type(exc).__name__}: {exc}", err=True)
            else:
                log = _write_crash_log(step)
                click.echo(f"edgepose: internal error while {step}: {type(exc).__name__}: {exc} "
                           f"(traceback in {log}; rerun with --debug to print it)", err=True)
            sys.exit(EXIT_INTERNAL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgepose")
@click.option("--debug", is_flag=True, help="Print full tracebacks (also EDGEPOSE_DEBUG=1).")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Train, export, benchmark and deploy WiFi-CSI pose networks for edge boxes.

    Exit codes: 0 ok, 1 a check failed, 2 bad input (one line naming the file and the problem),
    3 internal error (one line and the path of a log with the traceback).

    \b
    Examples:
      edgepose run --out runs/default
      edgepose --debug export runs/half/best.safetensors --precision int8 --out artifacts/
    """
    ctx.ensure_object(dict)["debug"] = debug


def _register() -> None:
    from edgepose.cli import bench_cmd, data_cmd, export_cmd, pipeline_cmd, train_cmd

    for command in (data_cmd.data, train_cmd.models, train_cmd.train, train_cmd.eval_cmd, export_cmd.export_cmd,
                    bench_cmd.bench_cmd, bench_cmd.report_cmd, pipeline_cmd.run):
        cli.add_command(command)
    for optional in ("deploy_cmd", "doctor_cmd", "analyze_cmd"):
        try:
            module = __import__(f"{__package__}.{optional}", fromlist=["COMMANDS"])
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{optional}":
                raise
            continue
        for command in module.COMMANDS:
            cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="edgepose")


_register()
