"""How wide the ΔPCK@20 interval is on the default split, and why it is bootstrapped over recordings.

For each int8 artifact given (against the fp32 ONNX graph of the same export folder) and for the
test and validation splits of a zoo model's default dataset, records:

* ΔPCK@20 with the 95 % paired bootstrap interval over **recordings** (the statistic every
  edgepose row uses, ``edgepose.stats.paired_bootstrap_delta``) and, for comparison, over
  **windows** (each window its own block), with both half-widths;
* the intra-recording correlation (one-way ANOVA ICC) of the per-window differences
  int8 − fp32 in PCK@20, and the design effect ``1 + (m − 1)·ICC`` for ``m`` windows per
  recording: the factor by which treating windows as independent understates the variance;
* how many windows change their share of joints within PCK@20 (a window where one joint
  crosses the threshold each way counts as unchanged);
* the share of the graph's convolution and matmul MACs that run in int8
  (``edgepose.benchmarking.macs.count_macs``);
* the same recording bootstrap stratified by activity (recordings resampled within each activity,
  so every replicate keeps the split's activity mix), when the recording ids are the synthetic
  default's ``S<subject>_<activity>_T<take>``: how much of the interval's width is the split's
  activity mix rather than the recordings themselves.

    python benchmarks/interval_width.py runs/default/artifacts --model wiflow-half \\
        [--extra "NAME=PATH" …] --out benchmarks/results/interval-width-wiflow-half.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

from common import window_hits
from held_out_by_activity import activity_of

#: the artifacts of ``edgepose run`` compared with fp32 (file-name infix → row name)
#: (the default int8, ``auto``, is the latency plan: it replaced ``checked``, which shipped ``guarded``)
DEFAULT_ROWS = {"int8-ptq-percentile-auto": "default int8 (auto: latency plan)", "int8-ptq-percentile-safe": "safe",
                "fp16": "fp16"}


def icc_oneway(diff: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """(ICC, mean group size) of ``diff`` within ``groups`` from one-way ANOVA mean squares."""
    labels = np.unique(groups)
    sizes = np.array([np.sum(groups == g) for g in labels], dtype=float)
    means = np.array([diff[groups == g].mean() for g in labels])
    grand = diff.mean()
    k, n = len(labels), len(diff)
    msb = np.sum(sizes * (means - grand) ** 2) / (k - 1)
    msw = sum(np.sum((diff[groups == g] - m) ** 2) for g, m in zip(labels, means)) / (n - k)
    m0 = (n - np.sum(sizes ** 2) / n) / (k - 1)  # effective group size for unequal groups
    if msb + (m0 - 1) * msw == 0:
        return 0.0, float(m0)
    return float((msb - msw) / (msb + (m0 - 1) * msw)), float(m0)


def stratified_bootstrap(diff: np.ndarray, recordings: np.ndarray, strata: dict, *, replicates: int = 2000,
                         level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """95 % (``level``) interval, in pp, of the window-weighted mean of ``diff`` when recordings are
    resampled with replacement *within* their stratum (``strata[recording]``), each stratum keeping
    its number of recordings: the recording bootstrap with the strata's mix held fixed."""
    from edgepose.stats import group_sums

    recs, sums, counts = group_sums(diff, recordings)
    labels = np.array([strata[r] for r in recs])
    rng = np.random.default_rng(seed)
    total, n = np.zeros(replicates), np.zeros(replicates)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        pick = members[rng.integers(0, len(members), size=(replicates, len(members)))]
        total += sums[pick].sum(axis=1)
        n += counts[pick].sum(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(total / n, [tail, 100 - tail]) * 100
    return float(low), float(high)


def activity_strata(file_ids: list[str]) -> dict | None:
    """recording index → activity for the synthetic default's ids, or None for any other naming."""
    try:
        return {i: activity_of(f) for i, f in enumerate(file_ids)}
    except ValueError:
        return None


def measure(artifacts: Path, model: str, rows: dict[str, str], threads: int,
            extra: dict[str, Path] | None = None) -> dict:
    import edgepose as ep
    from edgepose.benchmarking.macs import count_macs
    from edgepose.data import SplitSpec, open_dataset
    from edgepose.runtime.cpu import cpu_summary
    from edgepose.runtime.session import ort_predict, ort_session
    from edgepose.stats import paired_bootstrap_delta
    from edgepose.zoo import resolve_dataset

    card = ep.load_checkpoint(model).card
    ds = open_dataset(resolve_dataset(card, None, "scoring"))
    spec = SplitSpec.from_card(card)
    fp32 = next(artifacts.glob(f"{model}.fp32.onnx"))
    files = {name: next(iter(sorted(artifacts.glob(f"{model}.{infix}*.onnx"))), None) for infix, name in rows.items()}
    files.update(extra or {})
    missing = [n for n, f in files.items() if f is None or not Path(f).is_file()]
    if missing:
        raise SystemExit(f"{artifacts}: no artifact for {', '.join(missing)}")
    fp32_card = fp32.with_name(fp32.name + ".json")
    parent = (json.loads(fp32_card.read_text(encoding="utf-8")).get("parent") or {}) if fp32_card.is_file() else {}
    out = {"tool": "benchmarks/interval_width.py", "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "model": model, "artifacts": str(artifacts), "dataset_fingerprint": ds.fingerprint,
           "artifacts_parent_dataset": parent.get("dataset_fingerprint"),
           "machine": cpu_summary(), "splits": []}
    if parent.get("dataset_fingerprint") not in (None, ds.fingerprint):
        # e.g. a checkpoint trained on the default's recordings cut at another stride: the windows
        # scored here are the zoo card's (same split rule), not the ones the checkpoint was made from
        print(f"note: scoring on {model}'s dataset {ds.fingerprint[:12]}, not the artifacts' parent dataset "
              f"{parent['dataset_fingerprint'][:12]}", file=sys.stderr)
    strata = activity_strata(list(ds.file_ids))
    for split in ("test", "val"):
        idx = ds.indices(split, clean=True, spec=spec)
        x, y = ds.read(idx)
        recs = np.asarray(ds.window_file)[idx]
        base = window_hits(ort_predict(ort_session(fp32, threads=threads), x), y, ds.layout.torso)
        entry = {"split": split, "windows": int(len(idx)), "recordings": int(len(np.unique(recs))), "rows": []}
        for name, path in files.items():
            hits = window_hits(ort_predict(ort_session(path, threads=threads), x), y, ds.layout.torso)
            by_rec = paired_bootstrap_delta(hits, base, recs)
            by_win = paired_bootstrap_delta(hits, base, np.arange(len(idx)))
            icc, m0 = icc_oneway(hits - base, recs)
            macs = count_macs(path)
            entry["rows"].append({
                "row": name, "file": path.name, "delta_pp": by_rec.delta_pp,
                "by_recording": {"low_pp": by_rec.low_pp, "high_pp": by_rec.high_pp,
                                 "half_width_pp": (by_rec.high_pp - by_rec.low_pp) / 2},
                "by_window": {"low_pp": by_win.low_pp, "high_pp": by_win.high_pp,
                              "half_width_pp": (by_win.high_pp - by_win.low_pp) / 2},
                "icc": icc, "windows_per_recording": m0, "design_effect": 1 + (m0 - 1) * icc,
                "windows_changed": float(np.mean(hits != base)),
                "int8_mac_share": macs["int8_per_window"] / macs["per_window"]})
            if strata is not None:
                low, high = stratified_bootstrap(hits - base, recs, strata)
                entry["rows"][-1]["by_recording_within_activity"] = {
                    "low_pp": low, "high_pp": high, "half_width_pp": (high - low) / 2,
                    "activities": int(len({strata[r] for r in np.unique(recs)}))}
        out["splits"].append(entry)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("artifacts", type=Path, help="an export folder with MODEL.fp32.onnx (edgepose run's artifacts/)")
    ap.add_argument("--model", default="wiflow-half")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--extra", action="append", default=[], metavar="NAME=PATH",
                    help="another artifact of the same model to score (e.g. a guard's)")
    ap.add_argument("--only-extra", action="store_true",
                    help="score only the --extra artifacts (a folder without edgepose run's default rows)")
    ap.add_argument("--note", default="", help="written into the JSON (e.g. which checkpoint the folder came from)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    from edgepose.io import write_json

    bad = [e for e in args.extra if "=" not in e]
    if bad:
        ap.error(f"--extra takes NAME=PATH; got {', '.join(bad)}")
    extra = dict(e.split("=", 1) for e in args.extra)
    if args.only_extra and not extra:
        ap.error("--only-extra needs at least one --extra NAME=PATH")
    res = measure(args.artifacts, args.model, {} if args.only_extra else DEFAULT_ROWS, args.threads,
                  {k: Path(v) for k, v in extra.items()})
    if args.note:
        res["note"] = args.note
    write_json(args.out, res)
    for s in res["splits"]:
        for r in s["rows"]:
            print(f"{s['split']:4s} {r['row']:30s} Δ {r['delta_pp']:+.2f} pp  ±{r['by_recording']['half_width_pp']:.2f} "
                  f"(recordings) ±{r['by_window']['half_width_pp']:.2f} (windows)  "
                  f"±{r.get('by_recording_within_activity', {}).get('half_width_pp', float('nan')):.2f} (within activity)  "
                  f"ICC {r['icc']:.3f}  "
                  f"design effect {r['design_effect']:.2f}  int8 MACs {100 * r['int8_mac_share']:.0f} %")


if __name__ == "__main__":
    main()
