"""``benchmarks/held_out_by_activity.py``: activities from recording ids, per-activity scores that add
up, the stride probe on the same recordings cut finer (and its refusal of other recordings)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import held_out_by_activity as hoa

from edgepose.data import open_dataset
from edgepose.data.synth import synthesize
from edgepose.errors import EdgeposeError

from tests.conftest import TINY


@pytest.mark.parametrize("file_id, activity", [("S07_waving_T2", "waving"), ("S11_raising_hands_T13", "raising_hands")])
def test_activity_of_reads_the_synthetic_ids(file_id, activity):
    assert hoa.activity_of(file_id) == activity


@pytest.mark.parametrize("bad", ["E01_S01_A01", "waving", "S01_T1", "S01_walking_T", "X01_walking_T1"])
def test_activity_of_refuses_other_ids(bad):
    with pytest.raises(ValueError, match=repr(bad)):
        hoa.activity_of(bad)


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    """TINY's recordings cut every 5 packets instead of 10."""
    out = tmp_path_factory.mktemp("dense") / "tiny5"
    synthesize(out, dataclasses.replace(TINY, stride=5))
    return out


def test_measure_per_activity_and_the_stride_probe(tiny_run, tiny_data, dense):
    doc = hoa.measure([str(tiny_run)], ["one epoch"], dense)
    ds = open_dataset(tiny_data)
    test = next(r for r in doc["rows"] if r["split"] == "test")
    assert set(test["by_activity"]) - {"all"} <= set(TINY.activities)
    assert test["by_activity"]["all"]["windows"] == len(ds.indices("test", clean=True))
    for row in doc["rows"] + doc["datasets"][0]["rows"]:
        for v in row["by_activity"].values():
            assert 0.0 <= v["low"] <= v["pck20"] <= v["high"] <= 1.0
    # the probe at the default's stride is the default's lookup, window for window (same queries,
    # the same training windows); the finer stride adds the dense set's windows in between
    probe = doc["stride_probe"]
    assert [r["train_stride_packets"] for r in probe["rows"]] == [5, 10]
    lookup = next(r for r in doc["datasets"][0]["rows"] if r["predictor"] == "lookup" and r["split"] == "test")
    assert probe["rows"][1]["by_activity"] == lookup["by_activity"]
    assert probe["rows"][1]["train_windows"] == len(ds.indices("train", clean=True))
    assert probe["rows"][0]["train_windows"] > probe["rows"][1]["train_windows"]
    assert probe["query_windows"] == test["by_activity"]["all"]["windows"]
    md = hoa.to_markdown(doc)
    assert "| 5 | " in md and "| one epoch (1 epochs) | test |" in md and "0.20 s" in md


def test_the_dense_windows_in_line_with_the_default_are_the_same_windows(tiny_data, dense):
    """What the probe relies on: a finer stride cuts the same recordings, so the dense windows that
    start where the default's do hold the same samples (where neither set corrupted them)."""
    a, b = open_dataset(tiny_data), open_dataset(dense)
    pos = hoa.window_positions(b)
    same = np.flatnonzero(pos % 2 == 0)
    assert len(same) == len(a)
    xa, _ = a.read(np.arange(len(a)))
    xb, _ = b.read(same)
    clean = ~a.corrupt_mask() & ~b.corrupt_mask()[same]
    assert clean.sum() > len(a) // 2
    np.testing.assert_array_equal(xb[clean], xa[clean])


def test_the_stride_probe_refuses_other_recordings(tiny_data, dense):
    from edgepose.data import SplitSpec

    ds = open_dataset(tiny_data)
    ref = hoa.synth_config(tiny_data)
    with pytest.raises(EdgeposeError, match="differs in seed"):
        hoa.stride_probe(dense, ds, dict(ref, seed=4), SplitSpec())
    with pytest.raises(EdgeposeError, match="does not divide"):
        hoa.stride_probe(dense, ds, dict(ref, stride=7), SplitSpec())
    # a reference whose training files are already cut finer has no single grid to refine
    with pytest.raises(EdgeposeError, match="training files every 5 packets"):
        hoa.stride_probe(dense, ds, dict(ref, train_stride=5), SplitSpec())
    with pytest.raises(EdgeposeError, match="no synth_meta.json"):
        hoa.stride_probe(dense / "nowhere", ds, ref, SplitSpec())


def _doc(labels, datasets, probe, created):
    rows = [{"label": lab, "split": sp, "weights_sha256": lab, "by_activity": {"all": {"pck20": 0.5}}}
            for lab in labels for sp in ("val", "test")]
    return {"tool": "t", "created": created, "machine": {"cpu_model": created}, "rows": rows,
            "datasets": [{"fingerprint": f, "split_fingerprint": "s", "rows": []} for f in datasets],
            "stride_probe": probe}


def test_merge_adds_new_rows_and_keeps_what_cannot_be_measured_again():
    earlier = _doc(["shipped", "60-epochs"], ["old", "dense"], {"stride": 5}, "2026-12-01")
    new = _doc(["shipped"], ["new", "dense"], None, "2026-12-06")
    doc = hoa.merge(earlier, new, {"shipped": "first v2 zoo"})
    assert [(r["label"], r["split"]) for r in doc["rows"]] == [
        ("first v2 zoo", "val"), ("first v2 zoo", "test"), ("60-epochs", "val"), ("60-epochs", "test"),
        ("shipped", "val"), ("shipped", "test")]
    # earlier datasets first and in order (docs select datasets[0]); a repeated one is not doubled
    assert [d["fingerprint"] for d in doc["datasets"]] == ["old", "dense", "new"]
    assert doc["stride_probe"] == {"stride": 5} and doc["created"] == "2026-12-06"
    assert doc["merged"]["earlier_labels"] == ["60-epochs", "first v2 zoo"]
    # a new run's label replaces the earlier rows of that label (no relabel: "shipped" is remeasured)
    again = hoa.merge(earlier, new)
    assert [r["label"] for r in again["rows"]].count("shipped") == 2
    # a new probe replaces the earlier one
    assert hoa.merge(earlier, dict(new, stride_probe={"stride": 2}))["stride_probe"] == {"stride": 2}
    with pytest.raises(ValueError, match="'nope'"):
        hoa.merge(earlier, new, {"nope": "x"})


def test_merged_markdown_says_which_rows_are_new(tmp_path):
    earlier = _doc(["shipped"], ["old"], None, "2026-12-01")
    doc = hoa.merge(earlier, _doc(["shipped"], ["new"], None, "2026-12-06"), {"shipped": "first v2 zoo"})
    md = hoa.to_markdown(doc)
    assert "Rows of shipped measured then; those of first v2 zoo" in md and "2026-12-01" in md
    assert "| first v2 zoo | test |" in md and "| shipped | test |" in md


def test_relabel_needs_merge(capsys):
    with pytest.raises(SystemExit):
        hoa.main(["wiflow-half", "--relabel", "a=b", "--out", "x.json"])
    assert "needs --merge" in capsys.readouterr().err
