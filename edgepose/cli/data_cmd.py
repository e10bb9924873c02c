"""``edgepose data synth`` and ``edgepose data check``."""

from __future__ import annotations

from pathlib import Path

import click

from ._options import echo_json, path_arg


@click.group()
def data() -> None:
    """Create and inspect CSI datasets."""


@data.command("synth")
@click.option("--out", required=True, type=path_arg(), help="Folder to write (WiFlow layout).")
@click.option("--seed", default=0, show_default=True, help="Seed of every random stream.")
@click.option("--subjects", default=4, show_default=True)
@click.option("--takes", default=3, show_default=True, help="Recordings per subject and activity.")
@click.option("--duration", default=8.0, show_default=True, help="Seconds per recording.")
@click.option("--stride", default=8, show_default=True, help="Packets between window starts.")
@click.option("--activities", default=None, help="Comma-separated subset of the activities.")
@click.option("--overwrite", is_flag=True, help="Replace an existing non-empty folder.")
def synth(out: Path, seed: int, subjects: int, takes: int, duration: float, stride: int,
          activities: str | None, overwrite: bool) -> None:
    """Generate the physics-based synthetic dataset (the embedded default).

    \b
    Example:
      edgepose data synth --out data/synth-default
    """
    from tqdm import tqdm

    from ..data.synth import ACTIVITIES, SynthConfig, synthesize

    acts = tuple(a.strip() for a in activities.split(",")) if activities else ACTIVITIES
    unknown = [a for a in acts if a not in ACTIVITIES]
    if unknown:
        raise click.BadParameter(f"unknown activities {unknown}; choose from {', '.join(ACTIVITIES)}")
    cfg = SynthConfig(seed=seed, subjects=subjects, activities=acts, takes=takes, duration_s=duration, stride=stride)
    bar = tqdm(total=len(cfg.recordings()), desc="recordings", unit="file", leave=False)
    meta = synthesize(out, cfg, overwrite=overwrite, progress=lambda i, n: bar.update(1))
    bar.close()
    click.echo(f"wrote {meta['windows']} windows from {meta['files']} recordings to {out} in {meta['seconds']:.1f}s "
               f"(dynamic/static power {meta['dynamic_to_static_db_median']:.1f} dB)")


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
    from ..data import SplitSpec, open_dataset

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
