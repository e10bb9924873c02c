"""``edgepose run``: the whole pipeline on the embedded default, one stage after another."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import click

from ._options import path_arg

#: The exports the pipeline produces: (precision, method, calibrator, recipe).
EXPORTS = (
    ("fp32", None, "percentile", "safe"),
    ("fp16", None, "percentile", "safe"),
    ("int8", "ptq", "minmax", "safe"),
    ("int8", "ptq", "entropy", "safe"),
    ("int8", "ptq", "percentile", "safe"),
    ("int8", "ptq", "percentile", "global"),
    ("int8", "qat", "percentile", "safe"),
)


@click.command()
@click.option("--out", default=Path("runs/default"), show_default=True, type=path_arg(), help="Everything goes here.")
@click.option("--data", "data_dir", default=None, type=path_arg(),
              help="Use this dataset instead of synthesising the default into OUT/data.")
@click.option("--model", default="wiflow-half", show_default=True)
@click.option("--preset", default="cpu-budget", show_default=True, help="Training preset (see `edgepose train`).")
@click.option("--epochs", default=None, type=int, help="Override the preset's epochs.")
@click.option("--threads", default=None, type=int, help="Bench threads [default: the machine's core count].")
@click.option("--resume", is_flag=True, help="Reuse finished stages found in OUT.")
def run(out: Path, data_dir: Path | None, model: str, preset: str, epochs: int | None, threads: int | None,
        resume: bool) -> None:
    """Run the pipeline: synthesise → train → export every precision → bench → report.

    \b
    Example:
      edgepose run --out runs/default
    """
    from ..bench import TimingPlan, bench, write_results
    from ..data.synth import synthesize
    from ..evaluate import format_table
    from ..export import ExportRequest, export
    from ..report import build_report
    from ..train import TrainConfig, fit

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    if data_dir is None:
        data_dir = out / "data"
        if resume and (data_dir / "csi_windows.npy").is_file():
            click.echo(f"[1/5] data: reusing {data_dir}")
        else:
            click.echo(f"[1/5] data: synthesising the default dataset into {data_dir}")
            meta = synthesize(data_dir, overwrite=True)
            click.echo(f"      {meta['windows']} windows from {meta['files']} recordings in {meta['seconds']:.0f}s")
    cfg = TrainConfig.compose(preset, None, model=model, epochs=epochs)
    run_dir = out / "train"
    click.echo(f"[2/5] train: {cfg.model} ({preset}) for up to {cfg.epochs} epochs into {run_dir}")
    if resume and (run_dir / "best.json").is_file() and (run_dir / "train_config.json").is_file():
        from ..train import read_card

        card = read_card(run_dir)
        click.echo("      reusing the finished run")
    else:
        card = fit(cfg, data_dir, run_dir, resume=resume)
    click.echo(format_table(card["metrics"]))
    from ..metrics import pck_at

    tr = pck_at(card["metrics"]["train_subset"]["pck"], 0.2)
    click.echo(f"train-subset PCK@20 {100 * tr:.2f}% (memorisation check: compare with the clean test score)")

    art = out / "artifacts"
    click.echo(f"[3/5] export: {len(EXPORTS)} artifacts into {art}")
    ckpt = run_dir / "best.safetensors"
    art.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(ckpt.with_suffix(suffix), art / f"{cfg.model}.fp32{suffix}")
    for precision, method, calib, recipe in EXPORTS:
        req = ExportRequest(checkpoint=ckpt, out=art, precision=precision, method=method, calib=calib,
                            recipe=recipe, data=data_dir, log=lambda s: click.echo(f"      {s}"))
        for p in export(req):
            click.echo(f"      wrote {p.name}")

    results = out / "bench" / "cpu.json"
    click.echo(f"[4/5] bench: every artifact on the CPU backends → {results}")
    res = bench(art, "cpu", (1, 64), threads or os.cpu_count() or 1, TimingPlan(warmup=5, iters=30, min_seconds=1.0),
                data_dir, log=lambda s: click.echo(f"      {s}"), rounds=3)
    write_results(res, results)
    click.echo("[5/5] report")
    md, page = build_report([results], out / "report")
    click.echo(f"done in {(time.perf_counter() - t0) / 60:.1f} min — report: {page} (and {md.name})")
