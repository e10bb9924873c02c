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


@pytest.mark.parametrize("bad", ["E01_S01_A01", "waving", "S01_T1"])
def test_activity_of_refuses_other_ids(bad):
    with pytest.raises(ValueError, match=repr(bad)):
        hoa.activity_of(bad)


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    """TINY's recordings cut every 5 packets instead of 10."""
    out = tmp_path_factory.mktemp("dense") / "tiny5"
    synthesize(out, dataclasses.replace(TINY, stride=5))
    return out


def _config(path: Path) -> dict:
    return json.loads((path / "synth_meta.json").read_text())["config"]


def test_measure_scores_add_up_over_activities(tiny_run, tiny_data, dense):
    doc = hoa.measure([str(tiny_run)], ["one epoch"], dense)
    ds = open_dataset(tiny_data)
    for row in doc["rows"] + doc["datasets"][0]["rows"]:
        by = row["by_activity"]
        parts = [v for k, v in by.items() if k != "all"]
        assert sum(p["windows"] for p in parts) == by["all"]["windows"] > 0
        mean = sum(p["pck20"] * p["windows"] for p in parts) / by["all"]["windows"]
        assert mean == pytest.approx(by["all"]["pck20"])
    test = next(r for r in doc["rows"] if r["split"] == "test")
    assert test["by_activity"]["all"]["windows"] == len(ds.indices("test", clean=True))
    # the probe: strides 5 and 10 of the same recordings; its stride-10 queries are the default's windows
    probe = doc["stride_probe"]
    assert [r["train_stride_packets"] for r in probe["rows"]] == [5, 10]
    assert probe["rows"][0]["train_windows"] > probe["rows"][1]["train_windows"]
    md = hoa.to_markdown(doc)
    assert "| 5 | " in md and "one epoch (1 epochs) | test" in md


def test_the_stride_probe_matches_windows_of_the_same_recordings(tiny_data, dense):
    """The dense set's windows that start where the default's do are the default's windows."""
    a, b = open_dataset(tiny_data), open_dataset(dense)
    pos = hoa.window_positions(b)
    same = np.flatnonzero(pos % 2 == 0)
    assert len(same) == len(a)
    xa, _ = a.read(np.arange(len(a)))
    xb, _ = b.read(same)
    clean = ~a.corrupt_mask() & ~b.corrupt_mask()[same]
    np.testing.assert_array_equal(xb[clean], xa[clean])


def test_the_stride_probe_refuses_other_recordings(dense):
    other = dict(_config(dense), seed=4, stride=10)
    with pytest.raises(EdgeposeError, match="seed"):
        hoa.stride_probe(dense, other)
    with pytest.raises(EdgeposeError, match="stride"):
        hoa.stride_probe(dense, dict(_config(dense), stride=7))
