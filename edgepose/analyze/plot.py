"""The sensitivity plot: ΔPCK@20 per group (bars, ranked) with each group's output SQNR beside it."""

from __future__ import annotations

import math
from pathlib import Path


def plot_sensitivity(result, path: Path) -> Path:
    """Write a PNG of ``result`` (a :class:`~edgepose.analyze.SensitivityResult`) to ``path``, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_path

    ranked = result.ranked()
    n = len(ranked)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, max(3.0, 0.22 * n + 1.2)), sharey=True,
                                  gridspec_kw={"width_ratios": [3, 2]})
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
    fig.suptitle(f"{result.model}: int8 sensitivity on {result.windows} clean {result.split} windows "
                 f"({result.target}, {result.calibrator})", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
