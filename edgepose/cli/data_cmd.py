"""``edgepose data synth`` and ``edgepose data check``."""

from __future__ import annotations

from pathlib import Path

import click

from edgepose.cli._options import echo_json, path_arg
from edgepose.data.synth.generate import DEFAULT_CONFIGS
from edgepose.data.synth.versions import GENERATOR_VERSION


def _defaults(field: str, unit: str = "") -> str:
    """``[default: …]`` of one config field, read from the default configs (wiflow, mmfi; v1 when it differs)."""
    def get(layout: str, version: int):
        v = getattr(DEFAULT_CONFIGS[layout, version], field)
        return f"{v:g}{unit}" if isinstance(v, float) else f"{v}{unit}"

    cur = f"{get('wiflow', GENERATOR_VERSION)} (wiflow), {get('mmfi', GENERATOR_VERSION)} (mmfi)"
    old = [f"{layout} v1: {get(layout, 1)}" for layout in ("wiflow", "mmfi")
           if get(layout, 1) != get(layout, GENERATOR_VERSION)]
    return f"[default: {cur}{'; ' + ', '.join(old) if old else ''}]"


@click.group()
def data() -> None:
    """Create and inspect CSI datasets.

    \b
    Examples:
      edgepose data synth --out data/synth-default
      edgepose data synth --layout mmfi --out data/mmfi-synth
      edgepose data synth --generator-version 1 --out data/synth-v1
      edgepose data check data/synth-default
    """


@data.command("synth")
@click.option("--out", required=True, type=path_arg(), help="Folder to write.")
@click.option("--layout", type=click.Choice(["wiflow", "mmfi"]), default="wiflow", show_default=True,
              help="On-disk layout: WiFlow preprocessed ([N, 540, 20], 15 joints) or MM-Fi "
                   "(E01/S01/A01/wifi-csi/frameNNN.mat of (3, 114, 10), 17 joints).")
@click.option("--generator-version", "version", type=click.Choice(["1", "2"]), default="2", show_default=True,
              help="Generator version: 2 is the current default; 1 regenerates the data of checkpoints "
                   "whose cards record it (and takes version 1's default sizes).")
@click.option("--seed", default=None, type=int, help="Seed of every random stream.  [default: 0]")
@click.option("--subjects", default=None, type=int,
              help=f"Number of subjects.  {_defaults('subjects')}")
@click.option("--takes", default=None, type=int,
              help=f"Recordings per subject and activity (MM-Fi holds only 1).  {_defaults('takes')}")
@click.option("--duration", default=None, type=float,
              help=f"Seconds per recording.  {_defaults('duration_s', ' s')}")
@click.option("--window", default=None, type=int,
              help=f"Packets per window (per MM-Fi frame).  {_defaults('window')}")
@click.option("--stride", default=None, type=int,
              help=f"Packets between window starts.  {_defaults('stride')}")
@click.option("--train-stride", default=None, type=click.IntRange(min=0),
              help="Packets between window starts in the files the seed-42 split puts in training "
                   "(WiFlow layout; a divisor of --stride; 0: the same as --stride, which gives the "
                   "data of the first v2 zoo).  [default: 5 (wiflow v2); none otherwise]")
@click.option("--activities", default=None, help="Comma-separated subset of the activities.")
@click.option("--overwrite", is_flag=True, help="Replace an existing non-empty folder.")
@click.option("--workers", default=None, type=click.IntRange(min=1), envvar="EDGEPOSE_SYNTH_WORKERS",
              help="Processes that simulate recordings; the data written is the same for any count.  "
                   "[default: one per CPU, at most 8, where processes can be forked; else 1]")
def synth(out: Path, layout: str, version: str, seed: int | None, subjects: int | None, takes: int | None,
          duration: float | None, window: int | None, stride: int | None, train_stride: int | None,
          activities: str | None,
          overwrite: bool, workers: int | None) -> None:
    """Generate the physics-based synthetic dataset (the embedded default).

    \b
    Examples:
      edgepose data synth --out data/synth-default
      edgepose data synth --layout mmfi --out data/synth-mmfi
      edgepose data synth --generator-version 1 --out data/synth-v1   # the data of v1 checkpoints
      edgepose data synth --train-stride 0 --out data/synth-v2-first  # the first v2 zoo's data
    """
    from dataclasses import replace

    from tqdm import tqdm

    from edgepose.data.synth import ACTIVITIES, default_config, synthesize

    acts = tuple(a.strip() for a in activities.split(",")) if activities else None
    unknown = [a for a in acts or () if a not in ACTIVITIES]
    if unknown:
        raise click.BadParameter(f"unknown activities {unknown}; choose from {', '.join(ACTIVITIES)}")
    given = {"seed": seed, "subjects": subjects, "activities": acts, "takes": takes, "duration_s": duration,
             "window": window, "stride": stride}
    cfg = replace(default_config(layout, int(version)), **{k: v for k, v in given.items() if v is not None})
    if train_stride is not None:
        cfg = replace(cfg, train_stride=train_stride or None)
    _check_config(cfg, layout, train_stride_given=train_stride is not None)
    bar = tqdm(total=len(cfg.recordings()), desc="recordings", unit="file", leave=False)
    meta = synthesize(out, cfg, overwrite=overwrite, progress=lambda i, n: bar.update(1), layout=layout,
                      workers=workers)
    bar.close()
    click.echo(f"wrote {meta['windows']} windows from {meta['files']} recordings to {out} ({layout} layout, "
               f"generator v{meta['generator_version']}) in "
               f"{meta['seconds']:.1f}s (dynamic/static power {meta['dynamic_to_static_db_median']:.1f} dB)")


def _check_config(cfg, layout: str, train_stride_given: bool = True) -> None:
    """Turn a config the generator cannot make into a usage error before anything is written."""
    given = "" if train_stride_given else " (the default)"
    if cfg.subjects < 1 or cfg.takes < 1 or not cfg.activities:
        raise click.BadParameter("--subjects, --takes and --activities must each give at least one")
    if cfg.window < 1 or cfg.stride < 1 or cfg.duration_s <= 0:
        raise click.BadParameter("--window, --stride and --duration must be positive")
    if cfg.train_stride is not None and cfg.stride % cfg.train_stride:
        raise click.BadParameter(f"--train-stride {cfg.train_stride}{given} must divide --stride {cfg.stride}: pass "
                                 f"a divisor of {cfg.stride}, or --train-stride 0 to cut training files on the "
                                 "--stride grid")
    if layout == "mmfi" and cfg.train_stride is not None:
        raise click.BadParameter("the MM-Fi layout writes frames back to back: --train-stride applies to wiflow only")
    if len(set(cfg.activities)) != len(cfg.activities):
        raise click.BadParameter("--activities lists an activity twice")
    if layout == "mmfi" and cfg.takes != 1:
        raise click.BadParameter("the MM-Fi layout holds one sequence per subject and action: --takes must be 1")
    try:
        cfg.window_starts()
    except ValueError as exc:
        raise click.BadParameter(f"{exc} (--duration × 100 packets/s must reach --window)") from None


@data.command("check")
@click.argument("path", type=path_arg())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--split-seed", default=42, show_default=True)
def check(path: Path, as_json: bool, split_seed: int) -> None:
    """Validate a dataset: shapes, dtypes, corrupt windows, split summary.

    \b
    Example:
      edgepose data check data/synth-default --json
    """
    from edgepose.data import SplitSpec, open_dataset

    ds = open_dataset(path)
    spec = SplitSpec(seed=split_seed)
    split = ds.split(spec)
    report = {
        **ds.describe(),
        "dtype": str(ds.windows.dtype),
        "corruption": ds.corruption_report(),
        "split": {
            "seed": spec.seed, "fractions": list(spec.fractions), "fingerprint": ds.split_fingerprint(spec),
            **{name: {"files": len(files), "windows": int(len(ds.indices(name, clean=False, spec=spec))),
                      "clean_windows": int(len(ds.indices(name, clean=True, spec=spec)))}
               for name, files in split.items()},
        },
    }
    if as_json:
        echo_json(report)
        return
    c = report["corruption"]
    click.echo(f"{ds.format_name} dataset at {path}")
    click.echo(f"  windows {len(ds)} × {tuple(ds.window_shape)} {report['dtype']}, {ds.n_files} files, "
               f"{ds.layout.n_joints} joints ({ds.layout.name})")
    click.echo(f"  corrupt windows: {c['windows']} ({100 * c['fraction']:.2f}%) in {len(c['files'])} file(s)"
               + (f": {', '.join(c['files'][:10])}" if c["files"] else ""))
    for name in ("train", "val", "test"):
        s = report["split"][name]
        click.echo(f"  {name:5s}: {s['files']:4d} files, {s['windows']:7d} windows ({s['clean_windows']} clean)")
    click.echo(f"  split fingerprint {report['split']['fingerprint'][:16]}…  dataset {ds.fingerprint[:16]}…")
