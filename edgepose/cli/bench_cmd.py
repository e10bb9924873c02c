"""``edgepose bench`` and ``edgepose report``."""

from __future__ import annotations

from pathlib import Path

import click

from ._options import batches_option, path_arg


@click.command("bench")
@click.argument("artifact_dir", type=path_arg(exists=True, file_okay=False))
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--batch", "batches", default="1,64", show_default=True, callback=batches_option, help="Comma-separated.")
@click.option("--threads", default=0, show_default=True, help="Intra-op threads (0 = runtime default).")
@click.option("--warmup", default=10, show_default=True)
@click.option("--iters", default=50, show_default=True, help="Minimum timed runs per batch size.")
@click.option("--min-seconds", default=2.0, show_default=True, help="Minimum timed seconds per batch size.")
@click.option("--rounds", default=1, show_default=True,
              help="Time every artifact this many times (alternating order); report the median per statistic.")
@click.option("--data", "data_dir", type=path_arg(), default=None,
              help="Dataset for inputs and accuracy [default: from the checkpoint card].")
@click.option("--no-accuracy", is_flag=True, help="Latency and size only.")
@click.option("--out", required=True, type=path_arg(), help="results.json (a .csv is written beside it).")
def bench_cmd(artifact_dir: Path, device: str, batches, threads: int, warmup: int, iters: int, min_seconds: float,
              rounds: int, data_dir: Path | None, no_accuracy: bool, out: Path) -> None:
    """Measure size, latency (p50/p90/p99) and locked accuracy of every artifact on every backend.

    \b
    Example:
      edgepose bench artifacts/ --device cpu --batch 1,64 --threads 2 --out benchmarks/results/cpu.json
    """
    from ..bench import TimingPlan, bench, write_results

    plan = TimingPlan(warmup=warmup, iters=iters, min_seconds=min_seconds)
    res = bench(artifact_dir, device, batches, threads, plan, data_dir, accuracy=not no_accuracy, log=click.echo,
                rounds=rounds)
    j, c = write_results(res, out)
    click.echo(f"results: {j} and {c} ({len(res['rows'])} rows, {len(res['skipped'])} skipped)")


@click.command("report")
@click.argument("results", nargs=-1, required=True, type=path_arg(exists=True, dir_okay=False))
@click.option("--out", default=Path("report"), show_default=True, type=path_arg(), help="Folder for report.md/.html.")
def report_cmd(results: tuple[Path, ...], out: Path) -> None:
    """Build the trade-off report (Markdown + self-contained HTML) from one or more bench results.

    \b
    Example:
      edgepose report benchmarks/results/cpu.json benchmarks/results/cuda.json --out report/
    """
    from ..report import build_report

    md, page = build_report(list(results), out)
    click.echo(f"report: {md} and {page}")
