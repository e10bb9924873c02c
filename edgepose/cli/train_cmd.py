"""``edgepose train``, ``edgepose eval`` and ``edgepose run`` (the whole pipeline)."""

from __future__ import annotations

from pathlib import Path

import click

from ._options import echo_json, path_arg


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


def _make_config(config_file, preset=None, **flags):
    from ..train import TrainConfig

    return TrainConfig.compose(preset or "reference", config_file, **flags)


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
    from ..models import get_entry, list_models
    from ..zoo import list_pretrained

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
    from ..evaluate import format_table
    from ..train import fit

    recipe = flags.get("preset") or "reference"
    if config_file is not None:
        recipe += f" + {Path(config_file).name}"
    cfg = _make_config(config_file, **flags)
    card = fit(cfg, data_dir, out, resume=resume, recipe=recipe)
    if card:
        click.echo(format_table(card["metrics"]))
        click.echo(f"checkpoint: {out / 'best.safetensors'} (+ best.json)")


@click.command("eval")
@click.argument("checkpoint", type=path_arg())
@click.option("--data", "data_dir", required=True, type=path_arg(), help="Dataset folder.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def eval_cmd(checkpoint: Path, data_dir: Path, split: str, device: str, as_json: bool) -> None:
    """Score a checkpoint: PCK@10..50 and MPJPE on the clean and full split, with the mean-pose baseline.

    \b
    Examples:
      edgepose eval runs/half/best.safetensors --data data/synth-default --json
    """
    from ..data import SplitSpec, open_dataset
    from ..errors import EdgeposeError
    from ..evaluate import evaluate, format_table, torch_predictor
    from ..train import load_checkpoint

    model, card = load_checkpoint(checkpoint)
    ds = open_dataset(data_dir)
    if tuple(ds.window_shape) != (model.cfg.in_channels, model.cfg.window) or ds.layout.n_joints != model.cfg.joints:
        raise EdgeposeError(
            f"checkpoint expects windows {model.cfg.in_channels}×{model.cfg.window} and {model.cfg.joints} joints; "
            f"dataset has {ds.window_shape[0]}×{ds.window_shape[1]} and {ds.layout.n_joints}", data_dir)
    split_cfg = card.get("split", {})
    spec = SplitSpec(split_cfg.get("seed", 42), tuple(split_cfg.get("fractions", (0.7, 0.15, 0.15))))
    results = evaluate(torch_predictor(model, device), ds, spec, splits=(split,))
    if card.get("dataset", {}).get("fingerprint") not in (None, ds.fingerprint):
        results["warning"] = "dataset fingerprint differs from the one the checkpoint was trained on"
    if as_json:
        echo_json(results)
    else:
        if "warning" in results:
            click.echo(f"warning: {results['warning']}", err=True)
        click.echo(format_table(results, split))
