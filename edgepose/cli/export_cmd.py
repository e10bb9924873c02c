"""``edgepose export``."""

from __future__ import annotations

from pathlib import Path

import click

from ._options import path_arg


@click.command("export")
@click.argument("checkpoint", type=path_arg())
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True)
@click.option("--method", type=click.Choice(["ptq", "qat"]), default=None, help="int8 only. [default: ptq]")
@click.option("--calib", type=click.Choice(["minmax", "entropy", "percentile"]), default="percentile",
              show_default=True, help="PTQ calibrator (QAT initialises its activation scales from it).")
@click.option("--target", type=click.Choice(["ort-cpu", "tensorrt"]), default="ort-cpu", show_default=True,
              help="int8 layout: ONNX Runtime CPU (u8/s8) or TensorRT (symmetric s8, inputs only).")
@click.option("--recipe", type=click.Choice(["safe", "convs", "global"]), default="safe", show_default=True,
              help="Which ops become int8 (global = the reference's quantize-everything, a PTQ baseline).")
@click.option("--engine", is_flag=True, help="Also build a TensorRT .plan (needs the [trt] extra and a GPU).")
@click.option("--data", "data_dir", type=path_arg(), default=None,
              help="Dataset for calibration and parity [default: the one in the checkpoint card].")
@click.option("--calib-count", default=512, show_default=True, help="Calibration windows (clean training only).")
@click.option("--calib-seed", default=0, show_default=True)
@click.option("--qat-epochs", default=2, show_default=True)
@click.option("--qat-lr", default=2e-5, show_default=True)
@click.option("--opset", default=18, show_default=True)
@click.option("--out", required=True, type=path_arg(), help="Artifact folder.")
def export_cmd(checkpoint: Path, precision: str, method: str | None, calib: str, target: str, recipe: str,
               engine: bool, data_dir: Path | None, calib_count: int, calib_seed: int, qat_epochs: int,
               qat_lr: float, opset: int, out: Path) -> None:
    """Export a checkpoint to ONNX (fp32, fp16, int8 PTQ/QAT as QDQ) and optionally a TensorRT engine.

    Each artifact gets a JSON card beside it (precision, recipe, parent hash, calibration
    fingerprint, versions, parity).

    \b
    Examples:
      edgepose export runs/half/best.safetensors --precision fp32 --out artifacts/
      edgepose export runs/half/best.safetensors --precision int8 --calib entropy --out artifacts/
      edgepose export runs/half/best.safetensors --precision int8 --method qat --out artifacts/
    """
    from ..export import ExportRequest, export
    from ..io import read_json

    req = ExportRequest(checkpoint=checkpoint, out=out, precision=precision, method=method, calib=calib,
                        target=target, recipe=recipe, engine=engine, data=data_dir, calib_count=calib_count,
                        calib_seed=calib_seed, qat_epochs=qat_epochs, qat_lr=qat_lr, opset=opset,
                        log=click.echo)
    for path in export(req):
        card = read_json(path.with_name(path.name + ".json"))
        line = f"wrote {path} ({card['bytes'] / 1e6:.2f} MB)"
        for name, p in card.get("parity", {}).items():
            extra = (f", PCK@20 {100 * p['reference_pck20']:.2f}% → {100 * p['candidate_pck20']:.2f}%"
                     if "candidate_pck20" in p else "")
            line += f"\n  parity {name}: max |Δ| {p['max_abs_error']:.2e}{extra}"
        click.echo(line)
