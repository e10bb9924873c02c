"""How far the bench's probe moves on this machine when nothing else changes — and when something does.

Times the disturbance probe exactly as ``edgepose bench`` does (the same session, spec and thread
count), in rounds of ``--readings`` readings (one before each pair of a round and one at its end:
9 for the README main job's 8 pairs). Between two readings another process runs an ONNX Runtime
workload for ``--gap`` seconds with the same threads, as a pair's process does in the bench
(``--gap-kind sleep`` waits instead). Phases:

* ``idle``: ``--rounds`` rounds with nothing else started by this script;
* ``burn``: ``--burn-rounds`` rounds with ``--burners`` busy processes competing for the cores —
  for the whole round in even rounds, from half-way in odd ones (a job that arrives mid-round).

Written: the raw readings, per round the statistics the disturbance rule uses (median, MAD,
level against the reference, slowest reading in jitters), their distribution over the idle
rounds, the old ``max/min − 1`` figure, the rule's verdict on every round, the load average
before and after each phase, the CPU's steal time and the CPU flags.

    python3 benchmarks/probe_spread.py --threads 2 --rounds 40 --readings 9 --gap 1.0 --burn-rounds 8
    python3 benchmarks/probe_spread.py --reanalyze benchmarks/results/probe-spread-amd-epyc-avx512-2t.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edgepose.runtime.cpu import cpu_summary
from edgepose.timing import disturbance as dist
from edgepose.timing.disturbance import DisturbanceProbe, ProbeSpec, judge, stall_factor, warm_readings


def _cpu_times() -> list[int]:
    try:
        return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except OSError:
        return []


def _proc_ticks(pid: int | str = "self") -> int:
    """utime + stime of one process (all its threads), in clock ticks."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    except (OSError, IndexError, ValueError):
        return 0


def _procs_running() -> int | None:
    try:
        return next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("procs_running"))
    except (OSError, StopIteration):
        return None


class Foreign:
    """CPU time other processes used (not this script, not its stand-in pair process) between two calls."""

    def __init__(self, worker_pid: int) -> None:
        self.pids = ("self", worker_pid)
        self.last = self._sample()

    def _sample(self) -> tuple[int, int, int]:
        t = _cpu_times()
        busy = sum(t[:3]) + sum(t[5:7]) if len(t) >= 7 else 0  # user nice system irq softirq
        return busy, sum(t[:8]) if t else 0, sum(_proc_ticks(p) for p in self.pids)

    def share(self) -> float | None:
        """Fraction of all CPUs' time used by other processes since the last call."""
        now = self._sample()
        d_busy, d_total, d_ours = (a - b for a, b in zip(now, self.last))
        self.last = now
        return max(0.0, (d_busy - d_ours) / d_total) if d_total > 0 else None


def _steal_pct(before: list[int], after: list[int]) -> float | None:
    """Share of CPU time the hypervisor gave to other guests between two /proc/stat samples (%)."""
    if len(before) < 8 or len(after) < 8:
        return None
    d = [a - b for a, b in zip(after, before)]
    return 100.0 * d[7] / sum(d) if sum(d) else None


def _pair_worker(conn, threads: int) -> None:
    """Stands in for a pair's process: on each request, run an ORT workload for that many seconds."""
    from edgepose.runtime.session import ort_session
    from edgepose.timing.disturbance import _model_bytes

    spec = ProbeSpec(rows=256, width=512, layers=6)
    sess = ort_session(_model_bytes(spec), threads=threads, spinning=False)
    feed = {"x": np.ones((spec.rows, spec.width), np.float32)}
    while True:
        seconds = conn.recv()
        if seconds is None:
            return
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            sess.run(None, feed)
        conn.send(True)


def _burner(stop, ready) -> None:
    """A busy process: dense products in one thread until told to stop."""
    os.environ["OMP_NUM_THREADS"] = "1"
    a = np.random.default_rng(0).standard_normal((256, 256))
    ready.release()
    while not stop.is_set():
        a = np.tanh(a @ a.T / 256.0)


def _phase(probe, conn, rounds: int, readings: int, gap: float, gap_kind: str, foreign: Foreign, burners: int = 0,
           log=print, tag: str = "idle") -> dict:
    ctx = mp.get_context("spawn")
    out = {"load_before": list(os.getloadavg()), "rounds": [], "rounds_median_call": [], "burned": [],
           "foreign_cpu": [], "procs_running": []}
    cpu0, t0 = _cpu_times(), time.time()
    for r in range(rounds):
        stop, ready, procs = ctx.Event(), ctx.Semaphore(0), []
        partial = burners and r % 2 == 1
        vals, meds, burned, fcpu, running = [], [], [], [], []
        for k in range(readings):
            if burners and not procs and (not partial or k >= readings // 2):
                procs = [ctx.Process(target=_burner, args=(stop, ready), daemon=True) for _ in range(burners)]
                for p in procs:
                    p.start()
                for _ in procs:
                    ready.acquire()
                time.sleep(0.2)
            running.append(_procs_running())
            calls = probe.calls_ms()
            fcpu.append(foreign.share())
            vals.append(float(np.mean(calls)))
            meds.append(float(np.median(calls)))
            burned.append(bool(procs))
            if k < readings - 1:
                if gap_kind == "work":
                    conn.send(gap)
                    conn.recv()
                else:
                    time.sleep(gap)
        stop.set()
        for p in procs:
            p.join()
        out["rounds"].append(vals)
        out["rounds_median_call"].append(meds)
        out["burned"].append(burned)
        out["foreign_cpu"].append(fcpu)
        out["procs_running"].append(running)
        log(f"{tag} round {r + 1}/{rounds}: mean " + " ".join(f"{v:.3f}" for v in vals)
            + " | median " + " ".join(f"{v:.3f}" for v in meds)
            + " | foreign cpu " + " ".join("–" if v is None else f"{v:.2f}" for v in fcpu))
    out["seconds"] = time.time() - t0
    out["load_after"] = list(os.getloadavg())
    out["steal_pct"] = _steal_pct(cpu0, _cpu_times())
    return out


def _q(v, qs=(0, 5, 25, 50, 75, 95, 100)) -> dict:
    v = np.asarray([x for x in v if x is not None], dtype=float)
    return {f"p{q}": float(np.percentile(v, q)) for q in qs} if len(v) else {}


def _analyze(idle: list, burn: list, margin: float) -> dict:
    """The rule's statistics over idle rounds (readings: numbers, or (mean, median) pairs judged as their ratio)."""
    warm = warm_readings(idle)
    first = [stall_factor(r[0]) for r in idle[1:]]
    meds = [float(np.median(r)) for r in warm]
    ref = float(np.median(meds))
    s = dist.jitter(warm)
    idle_j = judge(idle, margin)
    both = judge(idle + burn, margin)
    n = len(idle)
    keys = ("reference", "jitter", "tolerance_level", "tolerance_spike")
    return {
        "cold_vs_reference": stall_factor(idle[0][0]) / ref - 1,
        "first_reading_of_later_rounds_vs_reference": _q([x / ref - 1 for x in first]),
        "reference": ref, "jitter_s": s,
        "within_round_rel_mad": _q([float(np.median(np.abs(np.asarray(r) - m))) / m for r, m in zip(warm, meds)]),
        "round_level": _q([m / ref - 1 for m in meds]),
        "round_level_in_jitters": _q([(m / ref - 1) / s for m in meds] if s else []),
        "slowest_reading": _q([max(r) / ref - 1 for r in warm]),
        "slowest_reading_in_jitters": _q([(max(r) / ref - 1) / s for r in warm] if s else []),
        "fastest_reading": _q([min(r) / ref - 1 for r in warm]),
        "rule_on_idle_alone": {k: idle_j[k] for k in keys}
        | {"disturbed": sum(r["disturbed"] for r in idle_j["rounds"]), "of": n,
           "rounds": [{"level": r["level"], "worst": r["worst"], "why": r["why"]} for r in idle_j["rounds"]]},
        "rule_on_idle_then_burn": {k: both[k] for k in keys}
        | {"idle_disturbed": sum(r["disturbed"] for r in both["rounds"][:n]), "idle_rounds": n,
           "burn_disturbed": sum(r["disturbed"] for r in both["rounds"][n:]), "burn_rounds": len(burn),
           "burn_rounds_detail": [{"whole_round": i % 2 == 0, "level": r["level"], "worst": r["worst"], "why": r["why"]}
                                  for i, r in enumerate(both["rounds"][n:])]},
    }


def analyze(doc: dict) -> dict:
    """Three statistics per reading: ``stall_factor`` (mean / median call: what the bench judges),
    ``mean_ms`` (moves with the box's fast/slow states too) and ``median_ms`` (blind to a competing
    process). For each: the idle rounds' distribution and the rule's verdict on idle and burn rounds
    judged as one run; plus the old max/min figure and the CPU other processes used."""
    ph = doc["phases"]
    margin = doc["probe"]["margin"]

    def pairs(p):
        return [list(zip(m, md)) for m, md in zip(p["rounds"], p["rounds_median_call"])]

    idle, burn = ph["idle"], ph.get("burn", {"rounds": [], "rounds_median_call": []})
    out = {"rule": {"text": dist.RULE, "margin": margin, "k_level": dist.K_LEVEL, "k_spike": dist.K_SPIKE,
                    "spike_floor": dist.SPIKE_FLOOR, "cold_readings": dist.COLD_READINGS},
           "stall_factor": _analyze(pairs(idle), pairs(burn), margin),
           "mean_ms": _analyze(idle["rounds"], burn["rounds"], margin),
           "median_ms": _analyze(idle["rounds_median_call"], burn["rounds_median_call"], margin),
           "old_rule_moved_mean_ms": _q([dist.moved(r) for r in idle["rounds"]]),
           "old_rule_disturbed_idle_rounds_mean_ms": int(sum(dist.moved(r) > 0.10 for r in idle["rounds"])),
           "old_rule_disturbed_idle_rounds_median_ms": int(sum(dist.moved(r) > 0.10
                                                               for r in idle["rounds_median_call"]))}
    for name, p in (("idle", idle), ("burn", burn)):
        f = [x for r in p.get("foreign_cpu", []) for x in r if x is not None]
        if f:
            out[f"foreign_cpu_{name}"] = _q(f)
    return out


def _slug(summary: dict, threads: int) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", summary["cpu_model"].lower()).strip("-")
    f = summary["cpu_flags"]
    isa = "avx512" if f.get("avx512f") else "avx2" if f.get("avx2") else summary["arch"]
    return f"{name}-{isa}-{threads}t"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="probe (and stand-in pair) threads, as the bench's --threads")
    ap.add_argument("--rounds", type=int, default=40, help="idle rounds")
    ap.add_argument("--readings", type=int, default=9, help="readings per round (pairs + 1)")
    ap.add_argument("--gap", type=float, default=1.0, help="seconds between readings")
    ap.add_argument("--gap-kind", choices=("work", "sleep"), default="work")
    ap.add_argument("--burn-rounds", type=int, default=8)
    ap.add_argument("--burners", type=int, default=None, help="busy processes in the burn phase [default: threads]")
    ap.add_argument("--out", type=Path, default=None,
                    help="[default: benchmarks/results/probe-spread-<cpu>-<isa>-<threads>t.json]")
    ap.add_argument("--reanalyze", type=Path, default=None, help="recompute the statistics of a written file")
    a = ap.parse_args()
    if a.reanalyze:
        doc = json.loads(a.reanalyze.read_text())
        doc["analysis"] = analyze(doc)
        a.reanalyze.write_text(json.dumps(doc, indent=1) + "\n")
        print(json.dumps(doc["analysis"], indent=1))
        return
    summary = cpu_summary()
    out = a.out or Path(__file__).parent / "results" / f"probe-spread-{_slug(summary, a.threads)}.json"
    spec = ProbeSpec()
    probe = DisturbanceProbe(spec, threads=a.threads)
    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe()
    worker = ctx.Process(target=_pair_worker, args=(there, a.threads), daemon=True)
    worker.start()
    doc = {"script": "benchmarks/probe_spread.py", "command": "python3 " + " ".join(sys.argv),
           "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "machine": summary, "probe": asdict(spec), "threads": a.threads, "readings_per_round": a.readings,
           "gap_s": a.gap, "gap_kind": a.gap_kind, "phases": {}}
    try:
        foreign = Foreign(worker.pid)
        doc["phases"]["idle"] = _phase(probe, here, a.rounds, a.readings, a.gap, a.gap_kind, foreign)
        if a.burn_rounds:
            doc["phases"]["burn"] = _phase(probe, here, a.burn_rounds, a.readings, a.gap, a.gap_kind, foreign,
                                           burners=a.burners or a.threads, tag="burn")
    finally:
        here.send(None)
        worker.join(timeout=10)
    doc["analysis"] = analyze(doc)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc["analysis"], indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
