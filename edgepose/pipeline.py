"""The whole chain as one library call: data → checkpoint → exports → bench → report.

``edgepose run`` is a thin command over :func:`run`. On the embedded default the pipeline starts
from the shipped ``models/wiflow-half`` checkpoint (so every machine compares the same weights)
and regenerates the default dataset from the card's recorded generator config; ``train=True``
(``--train``) retrains instead. With ``data`` (any supported layout: WiFlow, MM-Fi, …) it trains
a model adapted to that data's window shape and joints.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edgepose.runtime.parallel import DEFAULT_PARALLEL, usable_cpus
from edgepose.timing.rounds import DEFAULT_TIME_BUDGET_S, MIN_ROUNDS

#: Paired rounds the pipeline's bench starts with and needs undisturbed: the verdict rule's minimum.
#: The bench adds rounds while the leader is undecided (within its time budget), so more rounds
#: only cost time once it is decided: in the four committed runs of the main job (two per box,
#: 5 rounds each) the verdict after the first 3 rounds is the one after 5
#: (``benchmarks/results/rounds-needed.json``, ``benchmarks/rounds_needed.py``).
RUN_ROUNDS = MIN_ROUNDS

#: Training windows per QAT epoch in the main job (the dense default has ~22,600): two epochs over a
#: different random 8,192 each keep the job inside its time budget; ``export --method qat`` uses them all.
RUN_QAT_WINDOWS = 8192

#: The exports the pipeline produces: (precision, method, calibrator, recipe[, request overrides]).
#: The default int8 (``auto``: the latency plan made and verified on this machine) and the static
#: recipes it is judged against; calibrator comparisons live in ``benchmarks/quant_table.py``.
EXPORTS = (
    ("fp32", None, "percentile", "safe"),
    ("fp16", None, "percentile", "safe"),
    ("int8", "ptq", "percentile", "auto"),
    ("int8", "ptq", "percentile", "safe"),
    ("int8", "ptq", "percentile", "global"),
    ("int8", "qat", "percentile", "safe", {"qat_max_windows": RUN_QAT_WINDOWS}),
)


@dataclass
class PipelineResult:
    """What :func:`run` made: the dataset, checkpoint, artifacts, bench results and report."""

    out: Path
    data: Path
    checkpoint: Path
    artifacts: list[Path] = field(default_factory=list)
    results: Path | None = None
    report: Path | None = None
    seconds: float = 0.0
    trained: bool = False


def _default_log(msg: str) -> None:
    import logging

    logging.getLogger("edgepose").info(msg)


def run(out: str | Path = "runs/default", data: str | Path | None = None, model: str = "wiflow-half",
        from_checkpoint: str | Path | None = None, train: bool = False, preset: str = "cpu-budget",
        epochs: int | None = None, threads: int | None = None, rounds: int | None = RUN_ROUNDS,
        exports: tuple = EXPORTS, batches: tuple[int, ...] = (1, 64), resume: bool = False,
        timing=None, isolate: bool = True, log: Callable[[str], None] | None = None,
        time_budget: float | None = DEFAULT_TIME_BUDGET_S, parallel: str = DEFAULT_PARALLEL) -> PipelineResult:
    """Run the pipeline into ``out``; every stage's files stay there.

    Starting point, in order: ``from_checkpoint`` (a path or zoo name) → with no ``data`` and no
    ``train``, the shipped zoo entry of ``model`` if there is one → otherwise training ``model``
    with ``preset`` on ``data`` (synthesising the default set into ``out/data`` when no ``data``).
    ``rounds`` (:data:`RUN_ROUNDS` when None: the initial and minimum undisturbed paired rounds), ``timing``
    (a :class:`edgepose.benchmarking.TimingPlan`), ``isolate`` and ``time_budget`` (seconds of
    paired rounds, see :mod:`edgepose.benchmarking.adaptive`; None: exactly ``rounds``) go to the bench stage.
    ``threads`` and ``parallel`` (:data:`edgepose.runtime.parallel.PARALLEL_MODES`) are how the default int8's
    plan is timed and how the bench runs every artifact.
    """
    from edgepose.benchmarking import TimingPlan, bench, write_results
    from edgepose.evaluation import format_table
    from edgepose.exporting import ExportRequest, export
    from edgepose.metrics import pck_at
    from edgepose.reporting import build_report
    from edgepose.training import TrainConfig, fit, read_card
    from edgepose.zoo import list_pretrained, resolve_checkpoint, resolve_dataset

    log = log or _default_log
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = from_checkpoint
    if start is None and data is None and not train:
        shipped = {e.name: e for e in list_pretrained()}
        if model in shipped:
            start = shipped[model].path
    trained = False
    if start is not None:
        ckpt = resolve_checkpoint(start)
        card = read_card(ckpt)
        log(f"[1/5] data: for {ckpt.name} (fingerprint {str(card.get('dataset', {}).get('fingerprint'))[:12]}…)")
        data_dir = resolve_dataset(card, data, "scoring")
        log(f"[2/5] train: skipped — starting from {ckpt} ({card.get('model')})")
    else:
        if data is None:
            from edgepose.data.synth import synthesize

            data_dir = out / "data"
            if resume and (data_dir / "csi_windows.npy").is_file():
                log(f"[1/5] data: reusing {data_dir}")
            else:
                log(f"[1/5] data: synthesising the default dataset into {data_dir}")
                meta = synthesize(data_dir, overwrite=True)
                log(f"      {meta['windows']} windows from {meta['files']} recordings in {meta['seconds']:.0f}s")
        else:
            data_dir = Path(data)
            log(f"[1/5] data: {data_dir}")
        cfg = TrainConfig.compose(preset, None, model=model, epochs=epochs)
        run_dir = out / "train"
        log(f"[2/5] train: {cfg.model} ({preset}) for up to {cfg.epochs} epochs into {run_dir}")
        if resume and (run_dir / "best.json").is_file() and (run_dir / "train_config.json").is_file():
            card = read_card(run_dir)
            log("      reusing the finished run")
        else:
            card = fit(cfg, data_dir, run_dir, resume=resume, log=log)
        ckpt = run_dir / "best.safetensors"
        trained = True
    metrics = card.get("metrics") or {}
    if "test" in metrics:
        log(format_table(metrics))
    if "train_subset" in metrics:
        tr = pck_at(metrics["train_subset"]["pck"], 0.2)
        log(f"train-subset PCK@20 {100 * tr:.2f}% (memorisation check: compare with the clean test score)")

    art = out / "artifacts"
    log(f"[3/5] export: {len(exports)} artifacts into {art}")
    if art.is_dir():  # the bench times every artifact in the folder: none may be left from an earlier run
        shutil.rmtree(art)
    art.mkdir(parents=True, exist_ok=True)
    name = card.get("model", model)
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(ckpt.with_suffix(suffix), art / f"{name}.fp32{suffix}")
    paths: list[Path] = []
    bench_threads = threads or usable_cpus()
    for precision, method, calib, recipe, *extra in exports:
        # the default int8 (a plan) is timed as the bench will run it
        req = ExportRequest(checkpoint=ckpt, out=art, precision=precision, method=method, calib=calib,
                            recipe=recipe, data=data_dir, log=lambda s: log(f"      {s}"), batches=tuple(batches),
                            threads=bench_threads, parallel=parallel, **(extra[0] if extra else {}))
        for p in export(req):
            paths.append(p)
            log(f"      wrote {p.name}")

    results = out / "bench" / "cpu.json"
    log(f"[4/5] bench: every artifact on the CPU backends → {results}")
    plan = timing or TimingPlan(warmup=5, iters=30, min_seconds=1.0)
    res = bench(art, "cpu", tuple(batches), bench_threads, plan, data_dir,
                log=lambda s: log(f"      {s}"), isolate=isolate, time_budget=time_budget,
                rounds=RUN_ROUNDS if rounds is None else rounds, parallel=parallel)
    write_results(res, results)
    log("[5/5] report")
    md, page = build_report([results], out / "report")
    seconds = time.perf_counter() - t0
    log(f"done in {seconds / 60:.1f} min — report: {page} (and {md.name})")
    return PipelineResult(out, Path(data_dir), ckpt, paths, results, page, seconds, trained)
