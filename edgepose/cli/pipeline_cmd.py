"""``edgepose run``: the whole pipeline (a thin layer over :func:`edgepose.pipeline.run`)."""

from __future__ import annotations

from pathlib import Path

import click

from edgepose.cli._options import batches_option, parallel_option, path_arg
from edgepose.pipeline import RUN_ROUNDS
from edgepose.timing.rounds import DEFAULT_TIME_BUDGET_S


@click.command()
@click.option("--out", default=Path("runs/default"), show_default=True, type=path_arg(), help="Everything goes here.")
@click.option("--data", "data_dir", default=None, type=path_arg(),
              help="Use this dataset (any layout) instead of the embedded default.")
@click.option("--from", "from_checkpoint", default=None,
              help="Start from this checkpoint (path or zoo name, e.g. models/wiflow-half) and skip training.")
@click.option("--train", "retrain", is_flag=True, help="Train even when a shipped checkpoint exists.")
@click.option("--model", default="wiflow-half", show_default=True)
@click.option("--preset", default="cpu-budget", show_default=True, help="Training preset (see `edgepose train`).")
@click.option("--epochs", default=None, type=int, help="Override the preset's epochs.")
@click.option("--threads", default=None, type=int, help="Threads per call for the default int8's plan and the bench [default: the CPUs this process may use].")
@click.option("--rounds", default=RUN_ROUNDS, show_default=True, type=click.IntRange(min=1),
              help="Bench paired rounds to start with and to need undisturbed; more are added while the "
                   "fastest artifact within the accuracy gate is undecided, up to the bench's time budget "
                   f"({DEFAULT_TIME_BUDGET_S:.0f} s).")
@click.option("--batch", "batches", default="1,64", show_default=True, callback=batches_option,
              help="Bench batch sizes, comma-separated.")
@parallel_option("How the default int8's plan and the bench run each ONNX Runtime CPU call on --threads")
@click.option("--resume", is_flag=True, help="Reuse finished stages found in OUT.")
def run(out: Path, data_dir: Path | None, from_checkpoint: str | None, retrain: bool, model: str, preset: str,
        epochs: int | None, threads: int | None, rounds: int, batches, parallel: str,
        resume: bool) -> None:
    """Run the pipeline: data → checkpoint → export every precision → bench → report.

    On the embedded default it starts from the shipped models/<model> checkpoint (the default
    dataset is regenerated from its card); --train retrains. With --data it trains on that data.

    \b
    Examples:
      edgepose run --out runs/default
      edgepose run --from models/wiflow-half --out runs/half
      edgepose run --data data/mmfi-synth --model wiflow-tiny --out runs/mmfi
    """
    from edgepose.pipeline import run as run_pipeline

    run_pipeline(out, data=data_dir, model=model, from_checkpoint=from_checkpoint, train=retrain, preset=preset,
                 epochs=epochs, threads=threads, rounds=rounds, batches=batches, parallel=parallel,
                 resume=resume, log=click.echo)
