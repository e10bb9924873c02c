"""``edgepose bench`` and ``edgepose report``."""

from __future__ import annotations

from pathlib import Path

import click

from edgepose.cli._options import batches_option, parallel_option, path_arg
from edgepose.metrics import ACCURACY_GATE_PP
from edgepose.timing.disturbance import DEFAULT_MARGIN
from edgepose.timing.rounds import DEFAULT_TIME_BUDGET_S


@click.command("bench")
@click.argument("artifact_dir", type=path_arg(exists=True, file_okay=False))
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--batch", "batches", default="1,64", show_default=True, callback=batches_option, help="Comma-separated.")
@click.option("--threads", default=0, show_default=True,
              help="Threads per call (0 = the default: every usable CPU with --parallel batch, ONNX Runtime's "
                   "choice with intra).")
@click.option("--warmup", default=10, show_default=True)
@click.option("--iters", default=50, show_default=True, help="Minimum timed runs per batch size and round.")
@click.option("--min-seconds", default=2.0, show_default=True, help="Minimum timed seconds per batch size and round.")
@click.option("--rounds", default=5, show_default=True,
              help="Paired rounds: every artifact once per round in a shuffled order; medians over the "
                   "undisturbed rounds. The initial count, and the undisturbed rounds needed before stopping.")
@click.option("--time-budget", "time_budget", default=DEFAULT_TIME_BUDGET_S, show_default=True, type=float,
              metavar="SECONDS",
              help="Seconds of paired rounds: after --rounds, rounds are added (disturbed ones replaced) until, "
                   "at each batch size, the leader within the accuracy gate is clearly faster than every other "
                   "artifact, or another round would not fit; 0 runs exactly --rounds.")
@click.option("--spinning/--no-spinning", default=False, show_default=True,
              help="Let ONNX Runtime's idle threads busy-wait between calls.")
@parallel_option("How ONNX Runtime CPU runs one call on --threads")
@click.option("--probe-margin", default=DEFAULT_MARGIN, show_default=True,
              help="Smallest tolerance of the disturbance rule: a round is disturbed (left out and replaced) when "
                   "the median stall factor of its probe readings (mean / median call) is above the run's reference "
                   "by more than max(this, 4 × the jitter measured in the run), or one reading by more than "
                   "max(1.0, 8 × the jitter).")
@click.option("--no-probe", is_flag=True, help="Do not time the probe (no round is marked disturbed).")
@click.option("--seed", default=0, show_default=True, help="Seed of the per-round shuffles.")
@click.option("--data", "data_dir", type=path_arg(), default=None,
              help="Dataset for inputs and accuracy [default: from the checkpoint card].")
@click.option("--no-accuracy", is_flag=True, help="Latency and size only.")
@click.option("--out", required=True, type=path_arg(), help="results.json (a .csv is written beside it).")
def bench_cmd(artifact_dir: Path, device: str, batches, threads: int, warmup: int, iters: int, min_seconds: float,
              rounds: int, time_budget: float, spinning: bool, parallel: str, probe_margin: float, no_probe: bool, seed: int,
              data_dir: Path | None, no_accuracy: bool, out: Path) -> None:
    """Measure size, latency (paired rounds), locked accuracy and distance to peak of every artifact.

    \b
    Examples:
      edgepose bench artifacts/ --device cpu --batch 1,64 --threads 2 --out benchmarks/results/cpu.json
      edgepose bench artifacts/ --threads 1 --rounds 7 --out results-1t.json
      edgepose bench artifacts/ --threads 1 --time-budget 900 --out results-1t.json
    """
    from edgepose.api import bench
    from edgepose.benchmarking import ProbeSpec, TimingPlan

    plan = TimingPlan(warmup=warmup, iters=iters, min_seconds=min_seconds)
    result = bench(artifact_dir, device=device, batches=batches, threads=threads, data=data_dir, out=out,
                   accuracy=not no_accuracy, log=click.echo, plan=plan, rounds=rounds, spinning=spinning, parallel=parallel,
                   probe=None if no_probe else ProbeSpec(margin=probe_margin), seed=seed,
                   time_budget=time_budget or None)
    res = result.doc
    click.echo(f"results: {result.path} and {result.csv} ({len(res['rows'])} rows, {len(res['skipped'])} skipped, "
               f"{res['rounds_disturbed']} of {res['rounds']} rounds disturbed, stopped: {res.get('stopped')})")


@click.command("report")
@click.argument("results", nargs=-1, required=True, type=path_arg(exists=True, dir_okay=False))
@click.option("--out", default=Path("report"), show_default=True, type=path_arg(),
              help="Folder for report.md (with its PNG figures) and the self-contained report.html.")
@click.option("--max-drop", default=ACCURACY_GATE_PP, show_default=True,
              help="Accuracy gate: the lower end of the ΔPCK@20 95 % interval on test may be at most this far "
                   "below fp32 (pp).")
@click.option("--sensitivity", "sensitivity", multiple=True, type=path_arg(exists=True, dir_okay=False),
              help="A sensitivity.json from `edgepose analyze --out` to include (repeatable) [default: any "
                   "sensitivity.json beside the results files].")
def report_cmd(results: tuple[Path, ...], out: Path, max_drop: float, sensitivity: tuple[Path, ...]) -> None:
    """Build the trade-off report (Markdown + PNGs, self-contained HTML) from one or more bench results.

    Artifacts exported with `--objective` get a ΔPCK@20-vs-speed plot against the other recipes.

    \b
    Examples:
      edgepose report benchmarks/results/cpu.json benchmarks/results/cuda.json --out report/
      edgepose report cpu.json --max-drop 0.5 --out report/
      edgepose report cpu.json --sensitivity runs/sensitivity/sensitivity.json --out report/
    """
    from edgepose.api import report

    page = report(list(results), out=out, max_drop_pp=max_drop, sensitivity=list(sensitivity) or None)
    click.echo(f"report: {page.with_name('report.md')} and {page}")
