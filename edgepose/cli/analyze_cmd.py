"""``edgepose analyze``."""

from __future__ import annotations

from pathlib import Path

import click

from edgepose.cli._options import (LazyDefaultOption, RegistryChoice, batches_option, echo_json, parallel_option,
                                   path_arg, request_default)


@click.command("analyze")
@click.argument("checkpoint", type=str)
@click.option("--data", "data_dir", type=path_arg(), default=None,
              help="Dataset [default: the checkpoint's, found by fingerprint].")
@click.option("--target", type=RegistryChoice("edgepose.quantization.targets", "TARGETS"),
              default=request_default("target"), show_default=True, cls=LazyDefaultOption,
              help="int8 layout; decides which ops form groups.")
@click.option("--calib", type=RegistryChoice("edgepose.quantization.calibrators", "CALIBRATORS"),
              default=request_default("calib"), show_default=True, cls=LazyDefaultOption)
@click.option("--calib-count", type=int, default=request_default("calib_count"), show_default=True,
              cls=LazyDefaultOption, help="Calibration windows (clean training only).")
@click.option("--val-windows", type=int, default=None,
              help="Score on at most this many clean validation windows, evenly spaced [default: all].")
@click.option("--threads", type=int, default=2, show_default=True, help="ONNX Runtime threads.")
@click.option("--speed", is_flag=True, help="Also time each group's int8 gain (µs) on this machine: flipped to "
              "float alone in the all-int8 graph, paired against it.")
@click.option("--batch", "batches", default="1,64", show_default=True, callback=batches_option, metavar="B[,B…]",
              help="With --speed: batch sizes to time.")
@click.option("--speed-threads", type=int, default=0, show_default=True,
              help="With --speed: threads per timed call (0 = the runtime's default), used as --parallel says.")
@parallel_option("With --speed: how each timed call runs on --speed-threads")
@click.option("--runtime", type=RegistryChoice("edgepose.timing.adapters", "ADAPTERS"), default="onnxruntime",
              show_default=True, help="With --speed: the runtime to time on.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (schema edgepose-sensitivity v2).")
@click.option("--out", type=path_arg(), default=None,
              help="Write sensitivity.json, sensitivity.md and sensitivity.png here.")
def analyze_cmd(checkpoint: str, data_dir: Path | None, target: str, calib: str, calib_count: int,
                val_windows: int | None, threads: int, speed: bool, batches: tuple[int, ...], speed_threads: int,
                parallel: str, runtime: str, as_json: bool, out: Path | None) -> None:
    """Rank quantizable groups by what int8 costs: each group alone int8, scored on validation.

    Per group (conv + its activation, residual add, attention, head, pooling): ΔPCK@20 and
    ΔMPJPE on the clean validation split against the fp32 graph, and the SQNR of the group's
    output tensor. The ranking is the order in which `export --max-drop` restores groups.

    \b
    Examples:
      edgepose analyze wiflow-half --out runs/sensitivity
      edgepose analyze runs/half/best.safetensors --data data/wiflow --json > sensitivity.json
      edgepose analyze wiflow-tiny --target tensorrt --val-windows 512 --out runs/sens-trt
      edgepose analyze wiflow-half --speed --batch 1,64 --speed-threads 2 --out runs/sensitivity
    """
    from edgepose.analysis import analyze

    log = (lambda s: click.echo(s, err=True)) if as_json else click.echo
    result = analyze(checkpoint, data=data_dir, target=target, calib=calib, calib_count=calib_count,
                     val_windows=val_windows, threads=threads, speed=speed, batches=batches,
                     speed_threads=speed_threads, runtime=runtime, log=log, speed_parallel=parallel)
    if out is not None:
        for kind, path in result.write(out).items():
            log(f"wrote {path}")
    if as_json:
        echo_json(result.to_dict())
    else:
        click.echo(result.to_markdown())


COMMANDS = [analyze_cmd]
