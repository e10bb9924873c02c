"""The activity-stratified recording bootstrap of ``benchmarks/interval_width.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import interval_width

from edgepose.stats import paired_bootstrap_delta


def _windows(per_recording: list[float], windows: list[int], seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per-window differences around each recording's mean (uneven window counts), and their recordings."""
    rng = np.random.default_rng(seed)
    diff = np.concatenate([m + rng.normal(0, 0.01, n) for m, n in zip(per_recording, windows)])
    recs = np.repeat(np.arange(len(per_recording)), windows)
    return diff, recs


def test_a_difference_that_varies_only_between_activities_has_no_width_within_them():
    # 37 recordings in 3 activities; each activity's recordings lose the same, the activities differ a lot
    means = [-0.06] * 11 + [0.0] * 13 + [-0.01] * 13
    windows = [19, 23, 17, 20, 21, 18, 22, 20, 19, 24, 16] + [20] * 13 + [21] * 13
    strata = {i: ("walking" if i < 11 else "waving" if i < 24 else "kicking") for i in range(37)}
    diff, recs = _windows(means, windows)
    low, high = interval_width.stratified_bootstrap(diff, recs, strata)
    plain = paired_bootstrap_delta(diff, np.zeros_like(diff), recs)
    point = 100 * diff.mean()
    assert low <= point <= high
    # what is left comes from the uneven window counts (they move the activities' weights), not the recordings
    assert (high - low) / 2 < 0.2 * (plain.high_pp - plain.low_pp) / 2
    assert (plain.high_pp - plain.low_pp) / 2 > 0.5  # and it was what made the plain interval wide


def test_one_stratum_is_the_plain_recording_bootstrap_width():
    rng = np.random.default_rng(4)
    means = list(rng.normal(-0.01, 0.02, 29))
    windows = list(rng.integers(12, 30, 29))
    diff, recs = _windows(means, windows, seed=5)
    low, high = interval_width.stratified_bootstrap(diff, recs, {i: "walking" for i in range(29)})
    plain = paired_bootstrap_delta(diff, np.zeros_like(diff), recs)
    assert abs((high - low) - (plain.high_pp - plain.low_pp)) < 0.15 * (plain.high_pp - plain.low_pp)


def test_identical_scores_give_a_zero_interval():
    recs = np.repeat(np.arange(7), [3, 5, 1, 4, 2, 6, 3])
    low, high = interval_width.stratified_bootstrap(np.zeros(len(recs)), recs, {i: i % 2 for i in range(7)})
    assert low == 0.0 and high == 0.0


def test_strata_come_from_the_synthetic_ids_or_not_at_all():
    assert interval_width.activity_strata(["S01_walking_T1", "S12_raising_hands_T4"]) == {0: "walking", 1: "raising_hands"}
    assert interval_width.activity_strata(["S01_walking_T1", "E02/S07/A13"]) is None
