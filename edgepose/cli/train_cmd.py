"""``edgepose train``, ``edgepose eval`` and ``edgepose run`` (the whole pipeline)."""

from __future__ import annotations

from pathlib import Path

import click

from edgepose.cli._options import echo_json, path_arg


def _train_options(f):
    for opt in reversed([
        click.option("--model", default=None, help="Variant (see `edgepose models`). [default: wiflow-half]"),
        click.option("--epochs", type=int, default=None, help="Maximum epochs. [default: 12]"),
        click.option("--batch-size", type=int, default=None, help="[default: 64]"),
        click.option("--lr", type=float, default=None, help="AdamW learning rate. [default: 1e-4]"),
        click.option("--weight-decay", type=float, default=None, help="[default: 5e-5]"),
        click.option("--seed", type=int, default=None, help="Training seed. [default: 42]"),
        click.option("--split-seed", type=int, default=None, help="File-split seed. [default: 42]"),
        click.option("--threads", type=int, default=None, help="torch CPU threads (0 = torch default)."),
        click.option("--device", default=None, help="cpu or cuda[:N]. [default: cpu]"),
        click.option("--preset", default=None, help="Named starting point: reference, cpu-budget, zoo. [default: reference]"),
        click.option("--config", "config_file", type=path_arg(exists=True, dir_okay=False), default=None,
                     help="JSON or TOML file of training options; overrides the preset, flags override it."),
    ]):
        f = opt(f)
    return f


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models(as_json: bool) -> None:
    """List the registered model variants and the pretrained checkpoints of the zoo.

    Pretrained entries come from the repository's models/ folder (or $EDGEPOSE_MODELS), with
    PCK@20 on the clean test split of their training data beside the mean-pose baseline.

    \b
    Examples:
      edgepose models
      edgepose models --json
      edgepose export models/wiflow-half.safetensors --precision int8 --out exports/half
    """
    from edgepose.models import get_entry, list_models
    from edgepose.zoo import list_pretrained

    pretrained = list_pretrained()
    if as_json:
        echo_json({
            "variants": [{"name": n, "params": get_entry(n).params, "description": get_entry(n).description}
                         for n in list_models()],
            "pretrained": [{"name": e.name, "model": e.model, "path": str(e.path), "params": e.params,
                            "test_pck20": e.pck20, "mean_pose_pck20": e.mean_pose_pck20,
                            "dataset_fingerprint": e.card.get("dataset", {}).get("fingerprint")}
                           for e in pretrained],
        })
        return
    click.echo("variants:")
    for name in list_models():
        e = get_entry(name)
        click.echo(f"  {name:16s} {e.params:>10,d} params  {e.description}")
    click.echo("pretrained (PCK@20, clean test split of the training data):")
    if not pretrained:
        click.echo("  none found (looked in the repository's models/ folder; set $EDGEPOSE_MODELS to another)")
    for e in pretrained:
        click.echo(f"  {e.name:16s} {e.params:>10,d} params  PCK@20 {100 * e.pck20:6.2f}%  "
                   f"(mean pose {100 * e.mean_pose_pck20:5.2f}%)  {e.path}")


@click.command()
@click.option("--data", "data_dir", required=True, type=path_arg(), help="Dataset folder (any supported layout).")
@click.option("--out", required=True, type=path_arg(), help="Run folder for checkpoints.")
@click.option("--resume", is_flag=True, help="Continue after the last finished epoch in --out.")
@_train_options
def train(data_dir: Path, out: Path, resume: bool, config_file, **flags) -> None:
    """Train a model; writes best.safetensors + best.json (its card) and resumable state.

    \b
    Examples:
      edgepose train --data data/synth-default --model wiflow-half --epochs 12 --out runs/half
      edgepose train --data data/synth-default --model wiflow-tiny --preset zoo --out runs/tiny
    Under torchrun the same command trains with DistributedDataParallel:
      torchrun --nproc-per-node 2 -m edgepose train --data … --out …
    """
    from edgepose.api import train as train_model
    from edgepose.evaluation import format_table

    preset = flags.pop("preset", None) or "reference"
    ckpt = train_model(data_dir, out=out, preset=preset, resume=resume, progress=True, log=click.echo,
                       config_file=config_file, **flags)
    if ckpt is not None:
        click.echo(format_table(ckpt.card["metrics"]))
        click.echo(f"checkpoint: {ckpt.path} (+ {ckpt.path.with_suffix('.json').name})")


@click.command("eval")
@click.argument("checkpoint", type=str)
@click.option("--data", "data_dir", default=None, type=path_arg(),
              help="Dataset folder [default: the checkpoint's, found by fingerprint].")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--allow-other-data", is_flag=True,
              help="Score on a dataset whose fingerprint differs from the checkpoint's (reported as such).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def eval_cmd(checkpoint: str, data_dir: Path | None, split: str, device: str, allow_other_data: bool,
             as_json: bool) -> None:
    """Score a checkpoint or ONNX artifact: PCK@10..50 and MPJPE, clean and full split, mean-pose baseline.

    \b
    Examples:
      edgepose eval models/wiflow-half.safetensors
      edgepose eval runs/half/best.safetensors --data data/synth-default --json
      edgepose eval artifacts/wiflow-half.int8-ptq-percentile-safe-ort-cpu.onnx --split val
    """
    from edgepose.api import evaluate
    from edgepose.evaluation import format_table

    scores = evaluate(checkpoint, data=data_dir, split=split, allow_other_data=allow_other_data, device=device)
    results = scores.raw
    if as_json:
        echo_json(results)
    else:
        if "warning" in results:
            click.echo(f"warning: {results['warning']}", err=True)
        click.echo(format_table(results, split))
