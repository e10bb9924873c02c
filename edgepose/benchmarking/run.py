"""``edgepose bench``: every artifact × every backend that can run it, in paired, probed rounds.

One bench run is a number of *rounds*. A round runs every (artifact, backend) pair back to back in
a freshly shuffled order, each pair in its own process, with a fixed probe workload timed before
every pair and at the end (:mod:`edgepose.timing.disturbance`). From each round comes every pair's
latency and its speed ratio to the fp32 ONNX model of the same round (:mod:`.paired`); rounds the
probe rule calls disturbed are left out of the medians and replaced, and rounds are added until the
leader is decided at every batch size or the time budget is spent (:mod:`.adaptive`). Accuracy is scored once,
from each backend's own outputs, with a paired bootstrap CI of ΔPCK@20 over test recordings
(:mod:`.stats`); each row also gets its achieved GMAC/s and fraction of the machine's peak
(:mod:`.macs`, :mod:`.peak`).
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgepose.data import SplitSpec, open_dataset
from edgepose.errors import EdgeposeError
from edgepose.exporting.card import parent_card
from edgepose.benchmarking.results import SCHEMA, SCHEMA_VERSION, row_line
from edgepose.benchmarking.adaptive import CI_THRESHOLD, JobRounds, run_rounds
from edgepose.benchmarking.artifacts import ArtifactFile, discover
from edgepose.benchmarking.backends import backends_for
from edgepose.benchmarking.machine import machine_info
from edgepose.benchmarking.paired import speed_records
from edgepose.benchmarking.peak import achieved, machine_peak
from edgepose.runtime.parallel import DEFAULT_PARALLEL, check_parallel
from edgepose.timing.disturbance import RULE, DisturbanceProbe, ProbeSpec
from edgepose.stats import DEFAULT_REPLICATES, bootstrap_grouped
from edgepose.timing.rounds import TimingPlan, measure, measure_interleaved

#: Rounds a bench run makes unless told otherwise (the medians need at least 5); with a time budget,
#: the minimum count of undisturbed rounds and the initial count.
DEFAULT_ROUNDS = 5

_LOG = logging.getLogger("edgepose.benchmarking")


def bench(folder: Path, device: str = "cpu", batches: tuple[int, ...] = (1, 64), threads: int = 0,
          plan: TimingPlan = TimingPlan(), data: Path | None = None, accuracy: bool = True,
          log: Callable[[str], None] | None = None, isolate: bool = True, rounds: int = DEFAULT_ROUNDS, *,
          spinning: bool | None = False, parallel: str = DEFAULT_PARALLEL, probe: ProbeSpec | None = ProbeSpec(),
          seed: int = 0,
          replicates: int = DEFAULT_REPLICATES, time_budget: float | None = None,
          max_rounds: int | None = None) -> dict:
    """Benchmark every artifact in ``folder`` on every ``device`` backend; returns the results document.

    Args:
        folder: artifacts with cards (``*.safetensors`` checkpoints, ``*.onnx``, ``*.plan``).
        device: ``cpu`` or ``cuda``; picks the backends (:func:`.backends.backends_for`).
        batches: batch sizes timed.
        threads: threads per call for every runtime (0 = the runtime's default); ONNX Runtime CPU uses
            them as ``parallel`` says, the others as intra-op threads.
        plan: warm-up, minimum runs and seconds per batch size and round.
        data: dataset for real inputs and accuracy; default the one on the checkpoint card.
        accuracy: score the locked metric (off: latency and size only).
        log: progress callback (one line per event); default the ``edgepose.benchmarking`` logger.
        isolate: run every pair in a fresh spawned process (scripts that call this must guard
            their entry point with ``if __name__ == "__main__"``); off runs in-process (tests).
        rounds: paired rounds; statistics are medians over the undisturbed ones. With a
            ``time_budget``, the initial count and the minimum of undisturbed rounds.
        spinning: ONNX Runtime idle-thread spinning (False: threads sleep between calls, which
            matters on a machine whose cores are shared; None: the runtime's default).
        parallel: how ONNX Runtime on the CPU uses the ``threads`` cores for one call
            (:data:`edgepose.runtime.parallel.PARALLEL_MODES`): ``batch`` runs a call's windows as one
            shard per thread at once, ``intra`` as one call on the intra-op pool. Other backends run
            ``intra``.
        probe: the probe workload and its margin; None disables the probe (no round is marked).
        seed: seed of the per-round shuffles.
        replicates: bootstrap replicates for the ΔPCK@20 interval.
        time_budget: seconds of rounds: after the initial ``rounds``, rounds are added (disturbed
            ones replaced) until the leader is decided at every batch size or another round would
            not fit (:mod:`.adaptive`); None runs exactly ``rounds``.
        max_rounds: cap on the rounds run (default: ``adaptive.ROUND_CAP_FACTOR`` × the minimum).
    """
    log = log or _LOG.info
    if time_budget is not None and time_budget < 0:
        raise EdgeposeError(f"time_budget must be ≥ 0 seconds, got {time_budget}")
    if rounds < 1:
        raise EdgeposeError(f"rounds must be ≥ 1, got {rounds}")
    check_parallel(parallel)
    artifacts = discover(folder)
    if not artifacts:
        raise EdgeposeError("no artifacts with cards found (expected *.safetensors, *.onnx or *.plan)", folder)
    ref = next((a for a in artifacts if a.kind == "torch"), None)
    card0 = (ref or artifacts[0]).card
    parent = card0 if ref else parent_card(a.card for a in artifacts)
    ds = _dataset(folder, data, parent, log) if accuracy else None
    ds_path = ds.path if ds is not None else None
    spec = SplitSpec.from_card(parent)
    inputs = _inputs(ds, spec, batches, card0)

    peak = machine_peak()
    results = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION,
               "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "device": device, "threads": threads, "spinning": spinning, "parallel": parallel,
               "batches": list(batches),
               "timing_plan": asdict(plan), "rounds": rounds, "rounds_min": rounds, "time_budget_s": time_budget,
               "seed": seed,
               "machine": {**machine_info(), "peak": peak.to_dict(threads)},
               "dataset": ds.describe() if ds is not None else None,
               "inputs": "real clean test windows" if ds is not None else "uniform random (no dataset)",
               "checkpoint": _checkpoint_summary(ref),
               "rows": [], "skipped": []}
    if device == "cuda" and results["machine"]["gpu"] is None:
        results["note"] = "no CUDA GPU on this machine: every CUDA backend is listed as skipped"
    jobs = _jobs(artifacts, device, threads, spinning, parallel, inputs, plan, ds_path, spec, results["skipped"], log)

    lat, acc, failed, round_log, loop = _run_rounds(jobs, rounds, isolate, probe, threads, seed, log, time_budget,
                                                    max_rounds, replicates)
    used = loop["used"]
    n = results["rounds"] = loop["rounds"]
    j = loop["judgement"] or {}
    results["probe"] = None if probe is None else {
        **asdict(probe), "reading": "mean and median milliseconds per call", "rule": RULE,
        **{k: j.get(k) for k in ("reference", "jitter", "tolerance_level", "tolerance_spike")}}
    results["rounds_detail"] = round_log
    results["rounds_used"] = sum(used) if any(used) else n
    results["rounds_disturbed"] = n - sum(used)
    results["stopped"] = loop["stopped"]
    results["rounds_seconds"] = loop["seconds"]
    results["decision"] = loop["decision"]
    if not any(used):
        results["rounds_note"] = "every round was disturbed: medians over all rounds"

    base = _baseline(jobs, failed)
    results["speed_baseline"] = None if base is None else f"{jobs[base].art.path.name} on {jobs[base].backend}"
    macs = _macs(artifacts, log)
    for i, job in enumerate(jobs):
        if i in failed:
            results["skipped"].append(failed[i])
            log(f"skip  {job.art.label:34s} on {job.backend}: {failed[i]['reason'][:120]}")
            continue
        row = _row(job, lat[i], used, acc.get(i), base is not None and lat[base] or None, macs, peak, threads)
        results["rows"].append(row)
    _add_deltas(results, replicates)
    for row in results["rows"]:
        log(row_line(row))
    return results


# -- set-up -------------------------------------------------------------------------------------

def _dataset(folder: Path, data: Path | None, parent: dict, log):
    """The dataset to score on: ``data``, else the checkpoint's own (found by path and fingerprint, or
    regenerated when it is the synthetic default) — with a clear error saying which ``--data`` is
    needed when it cannot be found, and a note when ``data``'s fingerprint differs."""
    from edgepose.zoo import resolve_dataset

    want = (parent.get("dataset") or {}).get("fingerprint")
    if data is None:
        if not parent.get("dataset"):
            raise EdgeposeError("no dataset for the accuracy columns (no card names one): pass --data DIR "
                                "(or --no-accuracy)", folder)
        try:
            data = resolve_dataset(parent, None, "scoring")
        except EdgeposeError as exc:
            raise EdgeposeError(f"{exc.problem} (or --no-accuracy)", exc.path or folder) from None
    ds = open_dataset(data)
    if want and ds.fingerprint != want:
        log(f"note  {data}: dataset fingerprint {ds.fingerprint[:16]}… differs from the checkpoint card's "
            f"{want[:16]}…: accuracy is measured on other data than the model was trained for")
    return ds


def _inputs(ds, spec: SplitSpec, batches, card0: dict) -> dict[int, np.ndarray]:
    """Real clean test windows per batch size (repeated when the split is small), else uniform noise."""
    idx = ds.indices("test", clean=True, spec=spec) if ds is not None else np.array([], dtype=np.int64)
    if ds is not None and len(idx):
        return {b: ds.read(np.resize(idx, b))[0] for b in batches}
    rng = np.random.default_rng(0)
    shape = tuple(card0.get("window_shape") or (card0["model_config"]["in_channels"], card0["model_config"]["window"]))
    return {b: rng.uniform(0, 1, (b, *shape)).astype(np.float32) for b in batches}


def _checkpoint_summary(ref: ArtifactFile | None) -> dict | None:
    """What the results need from the fp32 checkpoint's card (so summaries read no ignored folder)."""
    if ref is None:
        return None
    c = ref.card
    return {"artifact": ref.path.name, "model": c.get("model"), "param_count": c.get("param_count"),
            "recipe": c.get("recipe"),
            "epochs_run": (c.get("training") or {}).get("epochs_run") or len(c.get("history", [])),
            "best_epoch": c.get("epoch"),
            "weights_sha256": c.get("weights_sha256"), "metrics": c.get("metrics"),
            "training": c.get("training")}


@dataclass
class _Job:
    art: ArtifactFile
    backend: str
    device: str
    threads: int
    inputs: dict
    plan: TimingPlan
    data: Path | None
    spec: SplitSpec
    spinning: bool | None = False
    parallel: str = "intra"
    score: bool = True
    baseline: ArtifactFile | None = None  # fp32 ONNX timed interleaved with this artifact in the same process

    @property
    def key(self) -> str:
        return f"{self.art.path.name} on {self.backend}"


def _jobs(artifacts, device, threads, spinning, parallel, inputs, plan, data, spec, skipped: list, log) -> list[_Job]:
    jobs = []
    for art in artifacts:
        for be in backends_for(device):
            if not be.accepts(art):
                continue
            ok, reason = be.available()
            if not ok:
                skipped.append({"artifact": art.path.name, "backend": be.name, "reason": reason})
                log(f"skip  {art.label:34s} on {be.name}: {reason}")
                continue
            # the mode this job runs in: only a backend that shards takes ``batch``
            jobs.append(_Job(art, be.name, device, threads, inputs, plan, data, spec, spinning,
                             parallel if be.shards else "intra"))
    base = _baseline(jobs, {})
    for i, job in enumerate(jobs):
        if base is not None and i != base and job.art.kind == "onnx" and job.backend == jobs[base].backend:
            job.baseline = jobs[base].art
    return jobs


# -- rounds -------------------------------------------------------------------------------------

def _run_rounds(jobs: list[_Job], rounds: int, isolate: bool, probe: ProbeSpec | None, threads: int, seed: int,
                log, time_budget: float | None = None, max_rounds: int | None = None,
                replicates: int = DEFAULT_REPLICATES) -> tuple[dict, dict, dict, list, dict]:
    """Run every job once per round in a shuffled order, probing before each job and at the end,
    for as many rounds as :func:`.adaptive.run_rounds` asks.

    Returns per-job latency records by round (``None`` where a job did not run), accuracy records,
    failed jobs (their skip record), the per-round log and the loop's record.
    """
    if not jobs:
        return {}, {}, {}, [], {"rounds": rounds, "used": [True] * rounds, "judgement": None, "stopped": "no jobs",
                                "seconds": 0.0, "round_seconds": [], "decision": {}}
    prober = DisturbanceProbe(probe, threads=threads) if probe is not None else None
    rr = JobRounds(jobs, _run_isolated if isolate else _run_row, prober, _baseline, seed, str(CI_THRESHOLD), replicates)
    loop = run_rounds(rr.play, rr.decide, rounds, time_budget, probe.margin if prober else None, max_rounds=max_rounds,
                      log=log)
    return rr.lat, rr.acc, rr.failed, rr.round_log(loop), loop


def _run_row(job: _Job) -> dict:
    """Load one artifact on one backend, time it at every batch size, score it when asked."""
    be = next(b for b in backends_for(job.device) if b.name == job.backend)
    art = job.art
    try:
        runner = be.load(art, job.threads, spinning=job.spinning, parallel=job.parallel)
    except Exception as exc:  # a backend that cannot load an artifact is reported, not fatal
        return {"skip": {"artifact": art.path.name, "backend": be.name,
                         "reason": f"load failed: {type(exc).__name__}: {exc}"[:500]}}
    base = None
    if job.baseline is not None:
        try:
            base = be.load(job.baseline, job.threads, spinning=job.spinning, parallel=job.parallel)
        except Exception:  # noqa: BLE001  (the pair is then compared across processes instead)
            base = None
    out: dict = {"latency": {}}
    if base is None:
        for b, x in job.inputs.items():
            out["latency"][str(b)] = measure(runner.prepare(x), runner.sync, b, job.plan)
    else:
        out["paired_base"] = {}
        for b, x in job.inputs.items():
            out["latency"][str(b)], out["paired_base"][str(b)] = measure_interleaved(
                runner.prepare(x), base.prepare(x), runner.sync, b, job.plan)
    if job.data is not None and job.score:
        from edgepose.benchmarking.accuracy import score_backend

        out["accuracy"] = score_backend(runner.predict, open_dataset(job.data), job.spec)
    return out


def _run_isolated(job: _Job) -> dict:
    """:func:`_run_row` in a fresh process, so no runtime's thread pool (torch's OpenMP workers
    keep spinning after a call) competes with the next one's measurement."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(_run_row, job).result()


# -- merging --------------------------------------------------------------------------------------

def _baseline(jobs: list[_Job], failed: dict) -> int | None:
    """Index of the fp32 ONNX job on the device's first ONNX Runtime backend (the ratios' denominator)."""
    cands = [i for i, j in enumerate(jobs) if j.art.kind == "onnx" and j.art.precision == "fp32" and i not in failed]
    order = ("ort-cpu", "ort-cuda", "ort-trt")
    cands.sort(key=lambda i: (order.index(jobs[i].backend) if jobs[i].backend in order else 9,
                              "plan" in jobs[i].art.card or "verified" in jobs[i].art.card,
                              jobs[i].art.path.name))  # the plain export before a plan or auto's fp32 fallback
    return cands[0] if cands else None


def _macs(artifacts: list[ArtifactFile], log) -> dict[str, dict]:
    """MACs per window of every ONNX artifact; the torch checkpoint borrows its fp32 ONNX export's count."""
    from edgepose.benchmarking.macs import count_macs

    out: dict[str, dict] = {}
    for a in artifacts:
        if a.kind == "onnx":
            try:
                out[a.path.name] = {**count_macs(a.path), "source": "this ONNX graph"}
            except EdgeposeError as exc:
                log(f"note  no MAC count for {a.path.name}: {exc.problem}")
    for a in artifacts:
        if a.kind != "onnx":
            twin = next((b for b in artifacts if b.kind == "onnx" and b.precision == "fp32"
                         and b.card.get("model") == a.card.get("model") and b.path.name in out), None)
            if twin is not None:
                out[a.path.name] = {**out[twin.path.name], "source": f"the fp32 ONNX export {twin.path.name}"}
    return out


def _row(job: _Job, per_round: list, used: list[bool], accuracy: dict | None, base_rounds: list | None,
         macs: dict, peak, threads: int) -> dict:
    art = job.art
    row = {"artifact": art.path.name, "label": art.label, "kind": art.kind, "precision": art.precision,
           "method": art.method, "target": art.card.get("target"), "backend": job.backend,
           "bytes": art.bytes, "size_mb": art.bytes / 1e6, "size_mib": art.bytes / 2**20, "latency": {}}
    row["parallel"] = job.parallel  # the mode this row ran in (_jobs: intra unless the backend shards)
    recipe = art.card.get("recipe")
    if isinstance(recipe, dict):
        row["recipe"] = {k: recipe.get(k) for k in ("calibrator", "recipe")}
    if art.card.get("parity") is not None:
        row["parity"] = art.card["parity"]
    for b in map(str, job.inputs):
        per = [(r["latency"][b] if r else None) for r in per_round]
        keep = [p for p, u in zip(per, used) if p is not None and u] or [p for p in per if p is not None]
        merged = {k: (float(np.median([p[k] for p in keep])) if isinstance(v, float) else v) for k, v in keep[0].items()}
        merged["iters"] = int(sum(p["iters"] for p in keep))
        merged["rounds_p50_ms"] = [p["p50_ms"] if p else None for p in per]
        merged["rounds_used"] = len(keep)
        row["latency"][b] = merged
    if base_rounds is not None:
        row["speed_vs_fp32_onnx"], row["speed_vs_fp32_onnx_cross_process"] = {}, {}
        for b in row["latency"]:
            row["speed_vs_fp32_onnx"][b], row["speed_vs_fp32_onnx_cross_process"][b] = speed_records(
                per_round, base_rounds, used, b)
    m = macs.get(art.path.name)
    if m:
        kind = "int8" if art.precision == "int8" else "fp32"
        row["compute"] = {"macs_per_window": m["per_window"], "macs_by_op": m["by_op"], "macs_source": m["source"],
                          "peak_precision": kind,
                          "by_batch": {b: achieved(m["per_window"], int(b), lat["p50_ms"], peak.gmacs(kind, threads))
                                       for b, lat in row["latency"].items()}}
    if accuracy is not None:
        row["accuracy"] = accuracy
    return row


def _add_deltas(results: dict, replicates: int) -> None:
    """ΔPCK@t vs the fp32 reference (torch checkpoint, else fp32 ONNX), with a paired bootstrap CI
    of ΔPCK@20 over test recordings; latency ratios vs the torch row (kept from schema 1)."""
    rows = [r for r in results["rows"] if "accuracy" in r]
    ref = next((r for r in rows if r["kind"] == "torch"), None) or next(
        (r for r in rows if r["kind"] == "onnx" and r["precision"] == "fp32"), None)
    if ref is not None:
        results["accuracy_reference"] = f"{ref['artifact']} on {ref['backend']}"
        rb = ref["accuracy"].get("by_recording")
        for r in rows:
            r["delta_pck_pp"] = {t: 100 * (r["accuracy"]["clean"]["pck"][t] - ref["accuracy"]["clean"]["pck"][t])
                                 for t in r["accuracy"]["clean"]["pck"]}
            ab = r["accuracy"].get("by_recording")
            if rb and ab and ab["recordings"] == rb["recordings"]:
                units = np.asarray(ab["windows"]) * ab["joints_per_window"]
                ci = bootstrap_grouped(ab["hits"][str(CI_THRESHOLD)], rb["hits"][str(CI_THRESHOLD)], units,
                                       replicates=replicates)
                r["delta_pck20_ci"] = {**ci.to_dict(), "reference": ref["artifact"],
                                       "method": "paired bootstrap over test recordings (percentile)"}
    torch_row = next((r for r in results["rows"] if r["kind"] == "torch"), None)
    if torch_row is not None:
        for r in results["rows"]:
            r["speedup_vs_torch"] = {b: torch_row["latency"][b]["p50_ms"] / r["latency"][b]["p50_ms"]
                                     for b in r["latency"] if b in torch_row["latency"]}


