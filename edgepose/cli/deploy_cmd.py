"""``edgepose package | infer | verify``: build a bundle here, run and check it on a box.

``infer`` and ``verify`` run the same code as ``python -m edgepose.runtime infer|verify`` (the
torch-free runtime); ``package`` is the build side. Registered by ``cli/main.py`` via
:data:`COMMANDS`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from edgepose.cli._options import echo_json, parallel_option, path_arg


def _providers(value: str | None) -> list[str] | None:
    return [p.strip() for p in value.split(",") if p.strip()] if value else None


@click.command("package")
@click.argument("artifact", type=path_arg(dir_okay=False))
@click.option("--out", "-o", type=path_arg(dir_okay=False), required=True, help="The bundle to write (NAME.edgepose).")
@click.option("--data", type=path_arg(file_okay=False), default=None,
              help="Dataset for golden vectors (default: the parent checkpoint's).")
@click.option("--bench", "bench", type=path_arg(dir_okay=False), default=None,
              help="`edgepose bench` results holding this artifact's figures.")
@click.option("--ort", "ort_format", is_flag=True, help="Also ship the ONNX Runtime format model + required-ops config.")
@click.option("--ort-target", type=click.Choice(["amd64", "arm"]), default="amd64", show_default=True,
              help="Platform the ORT-format model is optimised for.")
@click.option("--golden", type=int, default=8, show_default=True, help="Number of golden test windows.")
@click.option("--checkpoint", type=path_arg(), default=None, help="Parent checkpoint (default: the one the card names).")
@click.option("--hop", type=int, default=None, help="Default frames between poses when streaming (default: the dataset's window stride).")
@click.option("--frame-rate", type=float, default=None, help="Frame (packet) rate in Hz, when the dataset does not record it.")
@click.option("--runtime-pyz", type=path_arg(dir_okay=False), default=None,
              help="Also write the runtime-only zipapp (needs just numpy + onnxruntime on the box).")
def package_cmd(artifact: Path, out: Path, data, bench, ort_format: bool, ort_target: str, golden: int,
                checkpoint, hop, frame_rate, runtime_pyz) -> None:
    """Bundle one exported ONNX artifact into a sealed NAME.edgepose file.

    The bundle holds the model, manifest.json (hashes, input/output contract, parent card, bench
    figures), golden vectors and, with --ort, the ONNX Runtime format model. Prints the bundle's
    SHA-256: compare it on the box for an authenticity check.

    \b
    Examples:
      edgepose package artifacts/wiflow-half.int8-ptq-percentile-safe-ort-cpu.onnx --out half-int8.edgepose
      edgepose package artifacts/wiflow-half.fp32.onnx --bench results.json --ort --out half-fp32.edgepose
      edgepose package half.int8.onnx --out half-int8.edgepose --runtime-pyz edgepose-runtime.pyz
    """
    from edgepose.deployment import package, write_runtime_pyz

    package(artifact, out, data=data, bench=bench, ort_format=ort_format, ort_target=ort_target, golden=golden,
            checkpoint=checkpoint, hop=hop, frame_rate=frame_rate, log=lambda s: click.echo(s, err=True))
    if runtime_pyz:
        click.echo(f"package: wrote the runtime-only zipapp {write_runtime_pyz(runtime_pyz)}", err=True)


@click.command("infer")
@click.argument("bundle", type=path_arg(dir_okay=False))
@click.option("--input", "-i", "source", required=True,
              help="windows.npy [N,C,T], frames.npy [F,C], or - for frames on stdin (one per line).")
@click.option("--output", "-o", default="-", show_default=True, help="out.jsonl, out.npy or - (JSON lines).")
@click.option("--hop", type=int, default=None, help="Frames between poses when streaming (default: manifest).")
@click.option("--threads", type=int, default=None, help="Cores a call may use (default: the CPUs this process may "
              "use with --parallel batch, ONNX Runtime's choice with intra).")
@parallel_option("How a call runs on --threads")
@click.option("--providers", default=None, help="Comma-separated execution providers (default: best available).")
@click.option("--ort", "ort_format", is_flag=True, help="Run the bundled ONNX Runtime format model.")
@click.option("--lenient", is_flag=True, help="Count malformed stdin lines as corrupt frames instead of failing.")
def infer_cmd(bundle: Path, source: str, output: str, hop, threads, parallel: str, providers, ort_format: bool,
              lenient: bool) -> None:
    """Predict poses with a bundle (same as `python -m edgepose.runtime infer`).

    Every result has a status; windows that are corrupt (NaN/inf or max|x| > 1.5) or hold a
    gap in the stream get no keypoints.

    \b
    Examples:
      edgepose infer half-int8.edgepose --input windows.npy --output poses.jsonl
      edgepose infer half-int8.edgepose --input frames.npy --hop 4 --output poses.npy
      csi-reader | edgepose infer half-int8.edgepose --input - --output -
    """
    from edgepose.interrupt import terminate_as_interrupt
    from edgepose.runtime.commands import infer, summary_line

    with terminate_as_interrupt():  # systemctl stop → KeyboardInterrupt → no half-written output file
        counts = infer(bundle, source, output, hop=hop, threads=threads, providers=_providers(providers),
                       ort_format=ort_format, lenient=lenient, parallel=parallel)
    click.echo(summary_line(counts, output), err=True)


@click.command("verify")
@click.argument("bundle", type=path_arg(dir_okay=False))
@click.option("--threads", type=int, default=None, help="Cores a call may use (default: the CPUs this process may use).")
@parallel_option("How a call runs on --threads (batch: the batch-1 latency runs on one thread)")
@click.option("--providers", default=None, help="Comma-separated execution providers (default: best available).")
@click.option("--seconds", type=float, default=2.0, show_default=True, help="Time spent measuring latency.")
@click.option("--max-slowdown", type=float, default=None, help="Fail when p50 exceeds this multiple of the manifest's.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def verify_cmd(bundle: Path, threads, parallel: str, providers, seconds: float, max_slowdown, as_json: bool) -> None:
    """Check a bundle on this machine: hashes, golden vectors, latency; exit 1 on any failure.

    \b
    Examples:
      edgepose verify half-int8.edgepose
      taskset -c 0 edgepose verify half-int8.edgepose --threads 1 --json
    """
    from edgepose.runtime.verify import verify

    report = verify(bundle, threads=threads, providers=_providers(providers), seconds=seconds,
                    max_slowdown=max_slowdown, parallel=parallel)
    if as_json:
        echo_json(report.to_dict())
    else:
        for c in report.checks:
            click.echo(f"  [{'ok' if c.passed else 'FAIL'}] {c.name}: {c.detail}")
        click.echo(report.verdict)
    if not report.passed:
        sys.exit(1)


COMMANDS = [package_cmd, infer_cmd, verify_cmd]
