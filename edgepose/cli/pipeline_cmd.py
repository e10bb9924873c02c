"""``edgepose run``: the whole pipeline on the embedded default, one stage after another."""

from __future__ import annotations

from pathlib import Path

import click

from .main import cli, path_arg


@cli.command()
@click.option("--out", default=Path("runs/default"), show_default=True, type=path_arg(), help="Everything goes here.")
@click.option("--data", "data_dir", default=None, type=path_arg(),
              help="Use this dataset instead of synthesising the default into OUT/data.")
@click.option("--model", default="wiflow-half", show_default=True)
@click.option("--epochs", default=None, type=int, help="Training epochs (default: the TrainConfig default).")
@click.option("--resume", is_flag=True, help="Reuse finished stages found in OUT.")
def run(out: Path, data_dir: Path | None, model: str, epochs: int | None, resume: bool) -> None:
    """Run the pipeline: synthesise data → train → evaluate.

    \b
    Example:
      edgepose run --out runs/default
    """
    from ..data.synth import synthesize
    from ..evaluate import format_table
    from ..train import TrainConfig, fit

    out.mkdir(parents=True, exist_ok=True)
    if data_dir is None:
        data_dir = out / "data"
        if resume and (data_dir / "csi_windows.npy").is_file():
            click.echo(f"[1/2] data: reusing {data_dir}")
        else:
            click.echo(f"[1/2] data: synthesising the default dataset into {data_dir}")
            meta = synthesize(data_dir, overwrite=True)
            click.echo(f"      {meta['windows']} windows from {meta['files']} recordings in {meta['seconds']:.0f}s")
    cfg = TrainConfig(model=model, **({"epochs": epochs} if epochs else {}))
    run_dir = out / "train"
    click.echo(f"[2/2] train: {cfg.model} for up to {cfg.epochs} epochs into {run_dir}")
    card = fit(cfg, data_dir, run_dir, resume=resume)
    click.echo(format_table(card["metrics"]))
    tr = card["metrics"]["train_subset"]["pck"][0.2]
    click.echo(f"train-subset PCK@20 {100 * tr:.2f}% (memorisation check: compare with test clean)")
