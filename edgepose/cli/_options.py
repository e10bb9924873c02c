"""Small helpers shared by the command modules (nothing here imports the command group)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgepose.runtime.parallel import DEFAULT_PARALLEL


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


class RegistryChoice(click.Choice):
    """A ``click.Choice`` whose choices are a registry's keys, read when first needed.

    The CLI stays quick to start (the registries live in modules that import onnxruntime or
    torch) and never retypes a registry's names.
    """

    def __init__(self, module: str, attr: str, case_sensitive: bool = True) -> None:
        self._source = (module, attr)
        self._loaded: tuple[str, ...] | None = None
        super().__init__((), case_sensitive)

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        if self._loaded is None:
            import importlib

            module, attr = self._source
            self._loaded = tuple(getattr(importlib.import_module(module), attr))
        return self._loaded

    @choices.setter
    def choices(self, _value) -> None:  # click's __init__ assigns; the registry is the source
        pass


def request_default(field_name: str):
    """The default of an :class:`edgepose.exporting.ExportRequest` field (read lazily)."""

    def get():
        import dataclasses

        from edgepose.exporting.request import ExportRequest

        return {f.name: f.default for f in dataclasses.fields(ExportRequest)}[field_name]

    return get


class LazyDefaultOption(click.Option):
    """An option whose callable default is resolved for ``--help`` too (shown as its value)."""

    def get_default(self, ctx, call: bool = True):
        return super().get_default(ctx, call=True)


def parallel_option(what: str):
    """``--parallel {batch,intra}`` (default :data:`DEFAULT_PARALLEL`); ``what`` starts its help: who runs calls how."""
    return click.option(
        "--parallel", type=RegistryChoice("edgepose.runtime.parallel", "PARALLEL_MODES"), default=DEFAULT_PARALLEL,
        show_default=True,
        help=f"{what}: 'batch' cuts a call's windows into one shard per thread and runs the shards at once on "
             "one-thread sessions (a one-window call runs on one thread); 'intra' runs one call on ONNX Runtime's "
             "intra-op pool of that many threads (docs/int8-threads.md).")
