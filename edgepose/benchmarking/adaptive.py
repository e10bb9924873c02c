"""Adaptive paired rounds: keep running rounds until the verdict's leader is decided, or the time is up.

A fixed number of rounds either wastes time (the leader was clear after three) or stops before a
verdict is possible (a noisy box left too few undisturbed rounds). So the bench runs its
``rounds`` (the minimum and initial count), then keeps adding rounds while

* fewer than ``rounds`` rounds are undisturbed — a disturbed round is *replaced*, not just
  dropped (the probe rule, :func:`edgepose.timing.disturbance.judge`, is re-applied to the whole
  run after every round, so a round's status can change as the reference settles), or
* at some batch size (and export target) the leader among the candidates that pass the accuracy
  gate is not yet *clearly faster* than every other candidate (:func:`.paired.leader_of`: its
  inter-quartile range wholly above theirs over at least ``MIN_ROUNDS`` undisturbed rounds each,
  the verdict's own rule),

as long as another round, at the median duration of the rounds so far, still fits in
``time_budget`` seconds (counted from the first round; the initial rounds always run). The
reason it stopped is recorded: ``decided``, ``budget``, ``round cap`` (``max_rounds``, by default
:data:`ROUND_CAP_FACTOR` × the minimum: more rounds do not narrow an inter-quartile range, they
only estimate it better) or ``fixed rounds`` (no budget given).

The loop itself is pure: it calls ``play(r)`` to run round ``r`` (returning its probe readings)
and ``decide(used)`` to get the per-batch decision from the rounds so far, with an injectable
clock, so tests drive it with synthetic timings in milliseconds.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from edgepose.benchmarking.paired import MIN_ROUNDS, leader_of, speed_records, summarize_ratios
from edgepose.metrics import ACCURACY_GATE_PP
from edgepose.stats import bootstrap_grouped
from edgepose.timing.disturbance import judge, moved
from edgepose.timing.rounds import DEFAULT_TIME_BUDGET_S

#: PCK threshold whose difference to fp32 gets a confidence interval (and the accuracy gate).
CI_THRESHOLD = 0.2

#: Default cap on the rounds run, as a multiple of ``max(rounds, MIN_ROUNDS)``.
ROUND_CAP_FACTOR = 4

#: ``play(r)`` runs round ``r`` and returns its probe readings (empty without a probe).
Play = Callable[[int], Sequence[float]]
#: ``decide(used)`` → ``{name: leader_of(...) record}`` for every batch size (and target).
Decide = Callable[[list[bool]], dict]


def run_rounds(play: Play, decide: Decide, rounds: int, time_budget: float | None, margin: float | None, *,
               max_rounds: int | None = None, clock: Callable[[], float] = time.monotonic,
               log: Callable[[str], None] = lambda s: None) -> dict:
    """Run rounds as the module docstring says; returns the loop's record.

    ``margin`` is the probe rule's smallest tolerance, or None when there is no probe (no round is
    disturbed). The record: ``rounds`` (run), ``used`` (per round: not disturbed), ``judgement``
    (the probe rule's final verdict on the run, or None), ``stopped``, ``seconds``,
    ``round_seconds`` and ``decision`` (the last ``decide`` output).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be ≥ 1, got {rounds}")
    cap = max(rounds, max_rounds if max_rounds is not None else ROUND_CAP_FACTOR * max(rounds, MIN_ROUNDS))
    t0 = clock()
    readings: list[list[float]] = []
    secs: list[float] = []
    while True:
        r = len(readings)
        ts = clock()
        readings.append(list(play(r)))
        secs.append(clock() - ts)
        j = judge(readings, margin) if margin is not None else None
        used = [not x["disturbed"] for x in j["rounds"]] if j else [True] * len(readings)
        decision = decide(used)
        undecided = [k for k, d in decision.items() if not d["decided"]]
        n = len(readings)
        log(_round_line(n, rounds, time_budget, clock() - t0, j, used, decision, undecided))
        if n < rounds:
            continue
        if sum(used) >= rounds and not undecided:
            stopped = "decided" if decision else "enough rounds"  # (no speed ratios: nothing to decide)
        elif time_budget is None:
            stopped = "fixed rounds"
        elif n >= cap:
            stopped = "round cap"
        elif clock() - t0 + next_round_s(secs) > time_budget:
            stopped = "budget"
        else:
            continue
        break
    return {"rounds": len(readings), "used": used, "judgement": j, "stopped": stopped, "seconds": clock() - t0,
            "round_seconds": secs, "decision": decision}


def next_round_s(secs: Sequence[float]) -> float:
    """Expected seconds of the next round: the median of the rounds after the first (which also
    scores accuracy), or the first when it is the only one."""
    return float(np.median(secs[1:] if len(secs) > 1 else secs))


def _round_line(n: int, rounds: int, budget: float | None, elapsed: float, j: dict | None, used: list[bool],
                decision: dict, undecided: list[str]) -> str:
    rec = j["rounds"][-1] if j else None
    probe = ""
    if rec is not None and rec["median"]:
        probe = (f"probe {100 * rec['level']:+.0f} % vs the run's reference, slowest reading "
                 f"{100 * rec['worst']:+.0f} %" + (f"  DISTURBED ({rec['why']}): replaced" if rec["disturbed"] else ""))
    lead = "; ".join(f"b{k}: {'decided' if d['decided'] else 'undecided'} {d['leader']}"
                     + ("" if d["decided"] or not d["runner_up"] else f" vs {d['runner_up']}")
                     for k, d in decision.items())
    b = f"budget {budget:.0f} s" if budget is not None else "no budget"
    return (f"round {n} (min {rounds}, {sum(used)} undisturbed, {elapsed:.0f} s, {b}): {probe}"
            + (f"; {lead}" if lead else "") + (f"; undecided at {len(undecided)}" if undecided else ""))


def accuracy_gate(by_recording: dict, reference: str | None, threshold: str, replicates: int,
                  max_drop_pp: float = ACCURACY_GATE_PP) -> dict[str, bool]:
    """Which keys pass the accuracy gate the verdict applies by default: the lower end of the 95 %
    paired bootstrap interval of ΔPCK@``threshold`` against ``reference`` is ≥ −``max_drop_pp``.

    ``by_recording``: key → the row's ``accuracy["by_recording"]`` (None when the row has no
    accuracy: it passes, as the verdict cannot judge it either way).
    """
    ref = by_recording.get(reference) if reference is not None else None
    out = {}
    for k, ab in by_recording.items():
        if not ab or not ref or ab["recordings"] != ref["recordings"]:
            out[k] = True
            continue
        units = np.asarray(ab["windows"]) * ab["joints_per_window"]
        ci = bootstrap_grouped(ab["hits"][threshold], ref["hits"][threshold], units, replicates=replicates)
        out[k] = ci.low_pp >= -max_drop_pp
    return out


def target_groups(targets: dict[str, str | None]) -> dict[str | None, list[str]]:
    """Keys grouped by export target as the verdict groups them: one group per target when there are
    several (rows without a target in every group), else a single group."""
    ts = sorted({t for t in targets.values() if t})
    if len(ts) <= 1:
        return {None: list(targets)}
    return {t: [k for k, kt in targets.items() if kt in (t, None)] for t in ts}


def gate_reference(kinds: dict) -> object | None:
    """The key the accuracy gate compares against, from ``key → (kind, precision)``: the torch
    checkpoint, else the fp32 ONNX export, else None."""
    ref = next((k for k, v in kinds.items() if v[0] == "torch"), None)
    return ref if ref is not None else next((k for k, v in kinds.items() if tuple(v) == ("onnx", "fp32")), None)


def decisions_after(doc: dict, rounds: int, replicates: int | None = None) -> dict:
    """Replay the bench's stopping rule on the first ``rounds`` rounds of a results document.

    Returns what :meth:`JobRounds.decide` would have returned after round ``rounds``: per batch
    size (and target) the leader among the rows that pass the accuracy gate, and whether it is
    decided. The probe rule is re-applied to the first ``rounds`` rounds' readings (a round's status
    can depend on the rounds after it), the gate to the rows' per-recording hits at
    :data:`CI_THRESHOLD` against the document's ``accuracy_reference`` (else the torch checkpoint,
    else fp32 ONNX) with the bootstrap replicates its intervals record, and the ratios are the rows'
    stored paired ratios. With ``rounds`` = the document's own count it reproduces the document's
    ``decision``. Raises ``ValueError`` when the document has fewer rounds, no per-round ratios, or a
    probe whose readings it does not hold.
    """
    from edgepose.stats import DEFAULT_REPLICATES

    n = int(doc.get("rounds") or 0)
    if not 1 <= rounds <= n:
        raise ValueError(f"the results document has {n} rounds; cannot replay {rounds}")
    rows = {f"{r['artifact']} on {r['backend']}": r for r in doc.get("rows", []) if r.get("speed_vs_fp32_onnx")}
    if not rows:
        raise ValueError("the results document has no paired speed ratios to replay")
    detail = doc.get("rounds_detail") or []
    margin = (doc.get("probe") or {}).get("margin")
    if margin is not None:
        if len(detail) < rounds:
            raise ValueError(f"the results document has a probe but the readings of only {len(detail)} rounds")
        readings = [[(m, md) if md else m for m, md in zip(d["probe_ms"], d["probe_median_ms"])]
                    for d in detail[:rounds]]
        used = [not x["disturbed"] for x in judge(readings, margin)["rounds"]]
    else:
        used = [True] * rounds
    ref = doc.get("accuracy_reference") if doc.get("accuracy_reference") in rows else None
    ref = ref or gate_reference({k: (r["kind"], r["precision"]) for k, r in rows.items()})
    if replicates is None:
        replicates = next((r["delta_pck20_ci"]["replicates"] for r in rows.values()
                           if (r.get("delta_pck20_ci") or {}).get("replicates")), DEFAULT_REPLICATES)
    gate = accuracy_gate({k: (r.get("accuracy") or {}).get("by_recording") for k, r in rows.items()}, ref,
                         str(CI_THRESHOLD), replicates)
    batches = sorted({b for r in rows.values() for b in r["speed_vs_fp32_onnx"]}, key=int)
    out = {}
    for t, group in target_groups({k: r.get("target") for k, r in rows.items() if gate[k]}).items():
        for b in batches:
            recs = {k: summarize_ratios(rows[k]["speed_vs_fp32_onnx"][b]["rounds"][:rounds], used)
                    for k in group if b in rows[k]["speed_vs_fp32_onnx"]}
            out[b if t is None else f"{b}/{t}"] = leader_of(recs)
    return out


class JobRounds:
    """The bench's ``play`` and ``decide`` over its jobs (each an artifact on a backend).

    ``run_job(job)`` times one job (in its own process) and returns ``{"latency", "paired_base",
    "accuracy"}`` or ``{"skip": …}``; ``prober`` (or None) gives one probe reading per call of
    ``time_ms()``; ``baseline(jobs, failed)`` is the index of the fp32 ONNX job the ratios divide by.
    Jobs need ``key``, ``score``, ``inputs`` and ``art`` (``kind``, ``precision``, ``card``).
    """

    def __init__(self, jobs: list, run_job: Callable[[object], dict], prober, baseline: Callable, seed: int,
                 threshold: str, replicates: int) -> None:
        self.jobs, self.run_job, self.prober, self.baseline = jobs, run_job, prober, baseline
        self.threshold, self.replicates = threshold, replicates
        self.rng = np.random.default_rng(seed)
        self.lat: dict[int, list] = {i: [] for i in range(len(jobs))}
        self.acc: dict[int, dict] = {}
        self.failed: dict[int, dict] = {}
        self.orders: list[list[int]] = []
        self.readings: list[list[float]] = []
        self._gate: dict[int, bool] = {}

    def play(self, r: int) -> list[float]:
        """Round ``r``: every job once in a fresh shuffled order, a probe reading before each and at the end."""
        order = [int(i) for i in self.rng.permutation(len(self.jobs))]
        self.orders.append(order)
        readings: list[float] = []
        for i in self.lat:
            self.lat[i].append(None)
        for i in order:
            if i in self.failed:
                continue
            if self.prober:
                readings.append(self._read())
            job = self.jobs[i]
            job.score = i not in self.acc
            out = self.run_job(job)
            if "skip" in out:
                self.failed[i] = out["skip"]
                continue
            self.lat[i][r] = {"latency": out["latency"], "paired_base": out.get("paired_base")}
            if "accuracy" in out:
                self.acc[i] = out["accuracy"]
        if self.prober:
            readings.append(self._read())
        self.readings.append(readings)
        return readings

    def _read(self):
        """One probe reading: ``(mean_ms, median_ms)``, or the mean alone from a probe that keeps no median."""
        mean = self.prober.time_ms()
        median = getattr(self.prober, "last_median_ms", None)
        return (mean, median) if median else mean

    def decide(self, used: list[bool]) -> dict:
        """Per batch size (and target): the leader among the jobs that pass the accuracy gate, decided or not."""
        base = self.baseline(self.jobs, self.failed)
        live = [i for i in self.lat if i not in self.failed and any(self.lat[i])]
        if base is None or not live:
            return {}
        if len(self._gate) != len(self.acc):  # accuracy is scored once per job, in its first round
            ref = gate_reference({i: (self.jobs[i].art.kind, self.jobs[i].art.precision) for i in self.acc})
            self._gate = accuracy_gate({i: a.get("by_recording") for i, a in self.acc.items()}, ref, self.threshold,
                                       self.replicates)
        cands = [i for i in live if self._gate.get(i, not self.acc)]
        out = {}
        for t, group in target_groups({i: self.jobs[i].art.card.get("target") for i in cands}).items():
            for b in map(str, self.jobs[0].inputs):
                recs = {self.jobs[i].key: speed_records(self.lat[i], self.lat[base], used, b)[0] for i in group}
                out[b if t is None else f"{b}/{t}"] = leader_of(recs)
        return out

    def round_log(self, loop: dict) -> list[dict]:
        """One record per round: order, probe readings and the probe rule's verdict on it."""
        judged = (loop["judgement"] or {}).get("rounds") or [{} for _ in self.orders]
        def ms(readings, k):
            return [x[k] if isinstance(x, tuple) else (x if k == 0 else None) for x in readings]

        return [{"round": r, "order": [self.jobs[i].key for i in order], "probe_ms": ms(readings, 0),
                 "probe_median_ms": ms(readings, 1), "seconds": loop["round_seconds"][r],
                 "probe_moved": moved(ms(readings, 0)),
                 "probe_level": jr.get("level"), "probe_slowest": jr.get("worst"),
                 "disturbed": bool(jr.get("disturbed")), "why": jr.get("why")}
                for r, (order, readings, jr) in enumerate(zip(self.orders, self.readings, judged))]


__all__ = ["CI_THRESHOLD", "DEFAULT_TIME_BUDGET_S", "ROUND_CAP_FACTOR", "JobRounds", "accuracy_gate", "decisions_after",
           "gate_reference", "run_rounds", "target_groups"]
