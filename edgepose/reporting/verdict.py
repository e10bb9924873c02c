"""The verdict rule: which single artifact to ship, per machine, batch size (and target).

1. **Accuracy gate.** An artifact is a candidate when the lower end of the 95 % interval of its
   ΔPCK@20 against fp32 (paired bootstrap over test recordings) is ≥ −``max_drop_pp``. Its
   accuracy is described by that interval: "more accurate than fp32" only when the whole
   interval is above 0, "less accurate" when it is wholly below 0, otherwise "as accurate as
   fp32". Results without an interval fall back to the point estimate and say so.
2. **Speed.** Every candidate's speed is its ratio to fp32 ONNX timed in the same round, as a
   median and inter-quartile range over the undisturbed rounds. The fastest by median wins
   outright only when its IQR stays clear of (wholly above) every other candidate's, and only
   when both were timed in at least ``MIN_ROUNDS`` undisturbed rounds (the IQR of one or two
   rounds is not a spread).
3. **Tie** (enough rounds, IQRs overlap) or **undecided: too few rounds** (fewer than
   ``MIN_ROUNDS`` undisturbed rounds, whatever the gap between medians): the verdict names the
   two artifacts the rule could not separate — the leader by median and the runner-up — with
   their ratios and IQRs, and what would decide it; the artifact shipped meanwhile is picked
   among the candidates not clearly slower than the leader by accuracy, then by size on disk.
   Accuracy ranks by the **lower end** of the ΔPCK@20 interval: the largest loss the test data
   still allows. An interval [−0.99, +0.50] "as accurate" spans zero but allows a loss of
   almost 1 pp; [−0.14, −0.01] is "less accurate" yet allows at most 0.14 pp, and ranks above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgepose.benchmarking.paired import MIN_ROUNDS, clearly_faster, undisturbed
from edgepose.metrics import ACCURACY_GATE_PP, pck_at

#: An artifact may lose at most this much PCK@20 (percentage points, lower end of its test
#: interval) against fp32: the one accuracy gate (:data:`edgepose.metrics.ACCURACY_GATE_PP`).
MAX_DROP_PP = ACCURACY_GATE_PP
#: Relative band given to a single p50 when a results file has no paired rounds (schema 1).
UNPAIRED_BAND = 0.05

__all__ = ["MAX_DROP_PP", "MIN_ROUNDS", "Accuracy", "Choice", "accuracy_of", "choose", "pck20",
           "recordings_to_show", "sentence", "speed_of", "targets_of", "verdict_choices"]


def pck20(row: dict, which: str = "clean") -> float | None:
    """PCK@20 in % of one bench row, or None when the row has no accuracy."""
    acc = row.get("accuracy", {}).get(which, {}).get("pck", {})
    try:
        return 100 * pck_at(acc, 0.2)
    except KeyError:
        return None


@dataclass(frozen=True)
class Accuracy:
    """A row's accuracy against fp32, as the verdict words it."""

    eligible: bool
    rank: float        # the lower end of the ΔPCK@20 interval in pp (the point estimate without one): higher is better
    words: str


def accuracy_of(row: dict, max_drop_pp: float = MAX_DROP_PP) -> Accuracy | None:
    """Gate, rank and wording from the row's ΔPCK@20 interval (or point estimate when it has none)."""
    ci = row.get("delta_pck20_ci")
    if ci:
        d, lo, hi = ci["delta_pp"], ci["low_pp"], ci["high_pp"]
        band = f"ΔPCK@20 {d:+.2f} pp, 95 % CI [{lo:+.2f}, {hi:+.2f}] over {ci['recordings']} test recordings"
        ok = lo >= -max_drop_pp
        if lo > 0:
            return Accuracy(True, lo, f"more accurate than fp32 ({band})")
        if hi < 0:
            return Accuracy(ok, lo, f"less accurate than fp32 ({band})" +
                            (f", within the {max_drop_pp:g} pp gate" if ok else f", outside the {max_drop_pp:g} pp gate"))
        return Accuracy(ok, lo, f"as accurate as fp32 ({band})" if ok else
                        f"not shown to be within {max_drop_pp:g} pp of fp32 ({band})")
    d = row.get("delta_pck_pp", {})
    point = next((v for k, v in d.items() if abs(float(k) - 0.2) < 1e-9), None)
    if point is None:
        return None
    return Accuracy(point >= -max_drop_pp, point, f"ΔPCK@20 {point:+.2f} pp (point estimate; this results file has "
                                                  "no confidence interval)")


def speed_of(row: dict, batch: str, rows: list[dict]) -> dict | None:
    """The row's paired speed ratio at ``batch``; for schema-1 files a ±5 % band around p50 ratios."""
    rec = row.get("speed_vs_fp32_onnx", {}).get(batch)
    if rec and rec.get("n"):
        return rec
    if batch not in row.get("latency", {}):
        return None
    base = next((r for r in rows if r["kind"] == "onnx" and r["precision"] == "fp32" and batch in r["latency"]), None)
    if base is None:
        return None
    m = base["latency"][batch]["p50_ms"] / row["latency"][batch]["p50_ms"]
    return {"median": m, "q1": m * (1 - UNPAIRED_BAND), "q3": m * (1 + UNPAIRED_BAND), "min": m, "max": m, "n": 1,
            "unpaired": True}


@dataclass
class Choice:
    """The artifact to ship at one (machine, batch, target) and why."""

    batch: str
    target: str | None
    row: dict
    speed: dict
    accuracy: Accuracy
    tied: list[dict] = field(default_factory=list)   # other rows not clearly slower than the leader
    broken_by: str | None = None                      # "accuracy" | "size" | "accuracy, then size" when not a win
    runner_up: dict | None = None                     # a win: the next fastest by median
    gated_out: list[tuple[dict, dict]] = field(default_factory=list)  # clearly faster rows that failed the gate
    gated_unsure: list[tuple[dict, dict]] = field(default_factory=list)  # failed the gate, speed not separated
    few_rounds: int | None = None                     # undisturbed rounds, when too few to separate speeds
    size_peers: list[dict] = field(default_factory=list)  # tied rows as accurate as the choice (size decided)
    pair: list[tuple[dict, dict]] = field(default_factory=list)  # not a win: (row, speed) of leader and runner-up
    bench: dict | None = None                         # how the bench run stopped (rounds, disturbed, reason)
    gate_pp: float = MAX_DROP_PP                      # the accuracy gate the choice was made under

    @property
    def outcome(self) -> str:
        if not self.tied:
            return "win"
        return "undecided" if self.few_rounds is not None else "tie"


def choose(rows: list[dict], batch: str, max_drop_pp: float = MAX_DROP_PP, target: str | None = None) -> Choice | None:
    """Apply the rule to ``rows`` (one machine) at ``batch``; None when no row passes the gate."""
    cands, gated = [], []
    for r in rows:
        acc = accuracy_of(r, max_drop_pp)
        sp = speed_of(r, batch, rows)
        if acc is not None and sp is not None:
            (cands if acc.eligible else gated).append((r, sp, acc))
    if not cands:
        return None
    cands.sort(key=lambda c: -c[1]["median"])
    leader = cands[0]
    tied = [c for c in cands if c is leader or not clearly_faster(leader[1], c[1])]
    if len(tied) == 1:
        runner = cands[1][0] if len(cands) > 1 else None
        choice = Choice(batch, target, leader[0], leader[1], leader[2], runner_up=runner)
    else:
        best = max(tied, key=lambda c: (c[2].rank, -c[0]["bytes"], c[1]["median"]))
        others = [c for c in tied if c is not best]
        peers = [c[0] for c in others if c[2].rank == best[2].rank]  # as accurate: size decided among these
        broken = "size" if len(peers) == len(others) else ("accuracy, then size" if peers else "accuracy")
        choice = Choice(batch, target, best[0], best[1], best[2], tied=[c[0] for c in others],
                        broken_by=broken, size_peers=peers, pair=[(c[0], c[1]) for c in tied[:2]])
        rounds = min((undisturbed(c[1]) for c in cands if not c[1].get("unpaired")), default=None)
        if rounds is not None and rounds < MIN_ROUNDS:
            choice.few_rounds = rounds
    choice.gate_pp = max_drop_pp
    for r, sp, _ in gated:
        if clearly_faster(sp, choice.speed):
            choice.gated_out.append((r, sp))
        elif sp["median"] > choice.speed["median"]:
            choice.gated_unsure.append((r, sp))
    return choice


def _name(row: dict) -> str:
    return f"{row['label']} on {row['backend']}"


def _ratio_text(rec: dict) -> str:
    if rec.get("unpaired"):
        return f"{rec['median']:.2f}× the speed of fp32 ONNX (single p50s, no paired rounds)"
    return (f"{rec['median']:.2f}× the speed of fp32 ONNX (IQR {rec['q1']:.2f}–{rec['q3']:.2f}, "
            f"{rec['n']} paired round{'s' if rec['n'] != 1 else ''})")


def _short(rec: dict) -> str:
    if rec.get("unpaired"):
        return f"{rec['median']:.2f}× (single p50, ±{100 * UNPAIRED_BAND:.0f} % band)"
    return f"{rec['median']:.2f}× (IQR {rec['q1']:.2f}–{rec['q3']:.2f})"


def _bench_text(bench: dict | None) -> str:
    """How the bench run ended, when its results say so."""
    if not bench or not bench.get("stopped"):
        return ""
    why = {"budget": (f"its {bench['time_budget_s']:.0f} s time budget ran out" if bench.get("time_budget_s")
                      else "its time budget ran out"),
           "fixed rounds": "it ran a fixed number of rounds (no time budget)",
           "round cap": "it reached its cap on rounds",
           "decided": "the leader was decided under the default accuracy gate"}.get(
        bench["stopped"], f"of {bench['stopped']}")
    return (f" (the bench stopped because {why}, after {bench['rounds']} round{'s' if bench['rounds'] != 1 else ''}, "
            f"{bench.get('rounds_disturbed', 0)} disturbed)")


def _undecided_text(c: Choice) -> str:
    """Not a win: which two artifacts the rule could not separate, their ratios, and what would decide it."""
    (lead, ls), (run, rs) = c.pair
    if c.few_rounds is not None:
        n = c.few_rounds
        head = (f"undecided: too few rounds — {n} undisturbed paired round{'s' if n != 1 else ''} "
                f"({MIN_ROUNDS} needed to call a spread) between {_name(lead)} at {_short(ls)} and {_name(run)} "
                f"at {_short(rs)}")
    else:
        head = (f"speed undecided, a tie: {_name(lead)} at {_short(ls)} and {_name(run)} at {_short(rs)} overlap over "
                f"{min(undisturbed(ls), undisturbed(rs))} undisturbed paired rounds")
    more = len(c.tied) + 1 - 2
    head += f" (and {more} more not clearly slower)" if more > 0 else ""
    decide = ("; more undisturbed rounds would decide it — a quieter box (fewer threads than cores) or a larger "
              f"--time-budget{_bench_text(c.bench)}")
    if c.few_rounds is None:
        decide += "; artifacts that run the same kernels stay tied"
    sizes = f"({c.row['size_mb']:.2f} MB vs " + ", ".join(f"{t['size_mb']:.2f}" for t in c.size_peers) + " MB)"
    pick = {"accuracy": "picked by accuracy (the higher lower end of the ΔPCK@20 interval)",
            "size": f"picked by size {sizes}",
            "accuracy, then size": f"picked by accuracy (the higher lower end of the ΔPCK@20 interval), then by size "
                                   f"{sizes}"}[c.broken_by]
    return f"{head}{decide}; {pick}"


def recordings_to_show(ci: dict, gate_pp: float = MAX_DROP_PP) -> float | None:
    """How many times the test recordings an interval would need for its lower end to clear the gate.

    Only for a point estimate inside the gate (``delta_pp > −gate_pp``) whose interval reaches
    below it: the half-width must shrink to ``delta_pp + gate_pp``, and it shrinks with the square
    root of the number of recordings resampled, so the factor is ``(half-width / room)²`` — if
    the point estimate held on more data. None when the point estimate itself is outside the gate
    (more data would only confirm the loss) or the interval already clears it.
    """
    d, lo, hi = ci["delta_pp"], ci["low_pp"], ci["high_pp"]
    room, half = d + gate_pp, (hi - lo) / 2
    if not (room > 0 and half > 0 and lo < -gate_pp):
        return None
    return (half / room) ** 2


def _too_wide_text(ci: dict, gate_pp: float) -> str:
    k = recordings_to_show(ci, gate_pp)
    if k is None:
        return ""
    n = ci.get("recordings")
    of = f"the {n} test recordings" if n else "the test recordings"
    return (f"; its point estimate {ci['delta_pp']:+.2f} pp is inside the gate but the interval (±"
            f"{(ci['high_pp'] - ci['low_pp']) / 2:.2f} pp) is too wide to show it: about {k:.1f}× {of} would, "
            "if the estimate held")


def sentence(c: Choice, machine: str) -> str:
    """The verdict as one sentence naming the artifact and the evidence."""
    r = c.row
    where = f"On {machine} at batch {c.batch}" + (f", target {c.target}" if c.target else "")
    if c.outcome == "win":
        nxt = ""
        if c.runner_up is not None:
            rs = c.runner_up.get("speed_vs_fp32_onnx", {}).get(c.batch, {})
            nxt = f", clear of the next fastest ({_name(c.runner_up)}" + (
                f", IQR up to {rs['q3']:.2f}×)" if rs.get("n") else ")")
        speed = f"a clear speed win at {_ratio_text(c.speed)}{nxt}"
        if c.runner_up is None:
            speed = f"the only candidate within the accuracy gate, at {_ratio_text(c.speed)}"
        elif r["kind"] == "onnx" and r["precision"] == "fp32":
            speed = f"clearly faster than every other candidate within the accuracy gate{nxt}"
    else:
        speed = _undecided_text(c)
    gated = ""
    if c.gated_out:
        gated += "; faster but outside the accuracy gate: " + ", ".join(
            f"{_name(g)} ({sp['median']:.2f}×" + (f", ΔPCK@20 CI low {g['delta_pck20_ci']['low_pp']:+.2f} pp"
                                                  f"{_too_wide_text(g['delta_pck20_ci'], c.gate_pp)})"
                                                  if g.get("delta_pck20_ci") else ")")
            for g, sp in c.gated_out)
    if c.gated_unsure:
        gated += "; outside the accuracy gate, speed not separated from the choice's: " + ", ".join(
            _name(g) + (f" (ΔPCK@20 CI low {g['delta_pck20_ci']['low_pp']:+.2f} pp)" if g.get("delta_pck20_ci") else "")
            for g, _ in c.gated_unsure)
    return (f"{where}: ship **{r['label']}** on {r['backend']} — {speed}; {c.accuracy.words}; "
            f"{r['size_mb']:.2f} MB{gated}.")


def targets_of(rows: list[dict]) -> list[str | None]:
    """The export targets to decide separately: every distinct target when there are several, else one group."""
    ts = sorted({r["target"] for r in rows if r.get("target")})
    return ts if len(ts) > 1 else [None]


def verdict_choices(doc: dict, max_drop_pp: float = MAX_DROP_PP) -> list[Choice]:
    """Every choice of one results document: per batch size, and per target when there are several."""
    rows = [r for r in doc["rows"] if "accuracy" in r]
    bench = {k: doc.get(k) for k in ("stopped", "rounds", "rounds_disturbed", "time_budget_s")} \
        if doc.get("stopped") else None
    out = []
    for t in targets_of(rows):
        group = [r for r in rows if t is None or r.get("target") in (t, None)]
        for b in map(str, doc["batches"]):
            c = choose(group, b, max_drop_pp, t)
            if c is not None:
                c.bench = bench
                out.append(c)
    return out
