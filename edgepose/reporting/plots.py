"""The report's figures as PNG bytes: accuracy vs latency/size with the Pareto front, and speed ratios."""

from __future__ import annotations

import io
from typing import Callable

from edgepose.reporting.verdict import pck20


def pareto(points: list[tuple[float, float]]) -> list[bool]:
    """For (cost, accuracy) pairs: True where no other point has ≤ cost and ≥ accuracy, one strictly."""
    flags = []
    for i, (c, a) in enumerate(points):
        dominated = any((c2 <= c and a2 >= a and (c2 < c or a2 > a)) for j, (c2, a2) in enumerate(points) if j != i)
        flags.append(not dominated)
    return flags


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log_x(ax) -> None:
    """Log x axis with plain-number labels at 1-2-5 steps (no crowded minor labels)."""
    import matplotlib.ticker as mt

    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    subs = (1.0, 2.0, 5.0) if hi / lo > 6 else (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
    ax.xaxis.set_major_locator(mt.LogLocator(base=10, subs=subs))
    ax.xaxis.set_major_formatter(mt.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(mt.NullFormatter())


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    _pyplot().close(fig)
    return buf.getvalue()


def _name(r: dict, several_machines: bool) -> str:
    """Legend label; with several machines (or thread counts) the part of the machine tag that differs."""
    if not several_machines:
        return f"{r['label']} · {r['backend']}"
    tag = r["_machine"]
    head, _, tail = tag.partition(", ")
    return f"{r['label']} · {r['backend']} · {tail or head}" if r.get("_same_cpu") else f"{r['label']} · {r['backend']} · {tag}"


def accuracy_plot(rows: list[dict], cost: Callable[[dict], float | None], xlabel: str, title: str) -> bytes:
    """PCK@20 against a cost (latency, size) on a log axis; the Pareto front drawn and enlarged."""
    plt = _pyplot()
    pts = [(r, cost(r), pck20(r)) for r in rows if pck20(r) is not None and cost(r) is not None]
    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=110)
    if pts:
        several = len({p[0]["_machine"] for p in pts}) > 1
        front = pareto([(x, y) for _, x, y in pts])
        cmap = plt.get_cmap("tab10")
        for i, ((r, x, y), on) in enumerate(zip(pts, front)):
            ax.scatter(x, y, s=90 if on else 40, marker="s" if r["kind"] == "torch" else "o", color=cmap(i % 10),
                       edgecolor="black" if on else "none", linewidth=1.2, zorder=3,
                       label=_name(r, several) + ("  (Pareto)" if on else ""))
        fx = sorted((x, y) for (_, x, y), on in zip(pts, front) if on)
        if len(fx) > 1:
            ax.plot(*zip(*fx), linestyle="--", color="gray", zorder=2)
        _log_x(ax)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7, frameon=False, ncol=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("PCK@20, clean test split (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return _png(fig)


def speed_plot(rows: list[dict], batch: str, title: str) -> bytes:
    """Each row's paired speed ratio to fp32 ONNX at ``batch``: median (dot), IQR (thick), min–max (thin)."""
    plt = _pyplot()
    recs = [(r, r.get("speed_vs_fp32_onnx", {}).get(batch)) for r in rows]
    recs = [(r, s) for r, s in recs if s and s.get("n")]
    recs.sort(key=lambda rs: rs[1]["median"])
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * max(len(recs), 2) + 1.8), dpi=110)
    several = len({r["_machine"] for r, _ in recs}) > 1
    for y, (r, s) in enumerate(recs):
        color = "#2a7" if s["q1"] > 1 else ("#c44" if s["q3"] < 1 else "#888")
        ax.plot([s["min"], s["max"]], [y, y], color=color, linewidth=1, zorder=2)
        ax.plot([s["q1"], s["q3"]], [y, y], color=color, linewidth=6, alpha=0.6, solid_capstyle="butt", zorder=3)
        ax.scatter([s["median"]], [y], color="black", s=18, zorder=4)
        ax.annotate(f"{s['median']:.2f}×", (s["max"], y), xytext=(4, -3), textcoords="offset points", fontsize=7)
    ax.axvline(1.0, color="black", linestyle=":", linewidth=1)
    ax.set_yticks(range(len(recs)), [_name(r, several) for r, _ in recs], fontsize=7)
    if recs:
        lo = min(s["min"] for _, s in recs)
        hi = max(s["max"] for _, s in recs)
        ax.set_xlim(min(lo, 1.0) / 1.15, max(hi, 1.0) * 1.35)  # room for the labels right of each line
        _log_x(ax)
    ax.set_xlabel("× fp32 ONNX in the same round (log; > 1 faster)\ndot: median · bar: IQR · line: min–max")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="x", which="both")
    fig.tight_layout()
    return _png(fig)


def is_plan(row: dict) -> bool:
    """Whether a results row is a per-layer plan: an ``--objective`` export, or the default int8 (``auto``)
    that chose one."""
    rec = row.get("recipe") or {}
    return any(str(rec.get(k) or "").startswith("plan-") for k in ("recipe", "chosen"))


def plan_plot(rows: list[dict], batch: str, title: str) -> bytes:
    """ΔPCK@20 (95 % CI) against paired speed vs fp32 at ``batch``: int8 plans against every other recipe."""
    plt = _pyplot()
    pts = []
    for r in rows:
        ci, sp = r.get("delta_pck20_ci"), r.get("speed_vs_fp32_onnx", {}).get(batch)
        if ci and sp and sp.get("n"):
            pts.append((r, sp, ci))
    fig, ax = plt.subplots(figsize=(7.5, 4.6), dpi=110)
    several = len({r["_machine"] for r, _, _ in pts}) > 1
    cmap = plt.get_cmap("tab10")
    for i, (r, sp, ci) in enumerate(pts):
        planned = is_plan(r)
        ax.errorbar(sp["median"], ci["delta_pp"], yerr=[[ci["delta_pp"] - ci["low_pp"]], [ci["high_pp"] - ci["delta_pp"]]],
                    xerr=[[sp["median"] - sp["q1"]], [sp["q3"] - sp["median"]]], fmt="*" if planned else "o",
                    markersize=13 if planned else 6, color=cmap(i % 10), capsize=3, zorder=3,
                    label=_name(r, several) + ("  (per-layer plan)" if planned else ""))
    ax.axvline(1.0, color="black", linestyle=":", linewidth=1)
    ax.axhline(0.0, color="black", linestyle=":", linewidth=1)
    if pts:
        _log_x(ax)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7, frameon=False, ncol=2)
    ax.set_xlabel(f"× fp32 ONNX at batch {batch} (paired median, IQR; log; > 1 faster)")
    ax.set_ylabel("ΔPCK@20 vs fp32 (pp, 95 % CI)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return _png(fig)
