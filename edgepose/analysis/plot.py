"""The sensitivity plot: ΔPCK@20 per group (bars, ranked), each group's output SQNR and, when timed, its int8 gain."""

from __future__ import annotations

import io
import math
from pathlib import Path


def sensitivity_png(result) -> bytes:
    """PNG bytes of ``result`` (a :class:`~edgepose.analysis.SensitivityResult`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranked = result.ranked()
    n = len(ranked)
    big = None
    if result.speed and any(g.int8_gain_us for g in ranked):
        big = str(max(int(b) for b in result.speed["batches"]))
    ratios = [3, 2, 2] if big else [3, 2]
    fig, axes = plt.subplots(1, len(ratios), figsize=(12 if big else 10, max(3.0, 0.22 * n + 1.2)), sharey=True,
                             gridspec_kw={"width_ratios": ratios})
    ax, ax2 = axes[0], axes[1]
    ys = list(range(n))[::-1]
    dp = [g.delta_pck20_pp for g in ranked]
    ax.barh(ys, dp, color=["#c0392b" if v < 0 else "#7f8c8d" for v in dp])
    ax.axvline(0, color="black", lw=0.6)
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{g.name} ({g.kind})" for g in ranked], fontsize=7)
    ax.set_xlabel("ΔPCK@20 (pp), this group alone int8")
    sq = [g.sqnr_db if math.isfinite(g.sqnr_db) else float("nan") for g in ranked]
    ax2.barh(ys, sq, color="#2980b9")
    ax2.set_xlabel("output SQNR (dB)")
    if big:
        gain = [(g.int8_gain_us or {}).get(big, float("nan")) for g in ranked]
        axes[2].barh(ys, gain, color=["#27ae60" if v > 0 else "#c0392b" for v in gain])
        axes[2].axvline(0, color="black", lw=0.6)
        axes[2].set_xlabel(f"int8 gain at batch {big} (µs; > 0 faster)")
    fig.suptitle(f"{result.model}: int8 sensitivity on {result.windows} clean {result.split} windows "
                 f"({result.target}, {result.calibrator})", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def plot_sensitivity(result, path: Path) -> Path:
    """Write :func:`sensitivity_png` of ``result`` to ``path``, atomically."""
    from edgepose.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(sensitivity_png(result))
    return path
