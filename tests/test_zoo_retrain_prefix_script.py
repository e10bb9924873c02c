"""``benchmarks/zoo_retrain_prefix.py``: a training run's first epochs replay float for float, and a
history that was not produced by the card's config is caught at its first differing epoch."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import zoo_retrain_prefix

from edgepose.training import TrainConfig, fit


@pytest.fixture(scope="module")
def three_epoch_run(tmp_path_factory, tiny_data):
    out = tmp_path_factory.mktemp("run") / "tiny3"
    fit(TrainConfig(model="wiflow-tiny", epochs=3, batch_size=37, lr=1e-3, threads=1, scheduler="cosine"),
        tiny_data, out, progress=False, log=lambda s: None)
    return out


def test_replayed_prefix_is_identical(three_epoch_run, tiny_data, tmp_path):
    out = tmp_path / "prefix.json"
    rc = zoo_retrain_prefix.main([str(three_epoch_run), "--epochs", "2", "--data", str(tiny_data),
                                  "--work", str(tmp_path / "w"), "--out", str(out), "--timeout", "600"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["identical"] is True and res["first_difference"] is None
    assert [r["epoch"] for r in res["rows"]] == [1, 2]
    card = json.loads((three_epoch_run / "best.json").read_text())
    for row, want in zip(res["rows"], card["history"]):
        for f in zoo_retrain_prefix.FIELDS:
            assert row["fields"][f]["replay"] == want[f] and row["fields"][f]["abs_diff"] == 0.0
    # the second epoch trained with the cosine schedule's second rate, not the first's
    assert res["rows"][1]["fields"]["lr"]["replay"] < res["rows"][0]["fields"]["lr"]["replay"]
    assert not (tmp_path / "prefix.json.tmp").exists()


def test_a_history_off_by_one_ulp_is_reported_at_its_epoch(three_epoch_run, tiny_data, tmp_path):
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(three_epoch_run / "best.safetensors", moved / "best.safetensors")
    card = json.loads((three_epoch_run / "best.json").read_text())
    loss = card["history"][1]["val_mpjpe"]
    import math
    card["history"][1]["val_mpjpe"] = math.nextafter(loss, math.inf)
    (moved / "best.json").write_text(json.dumps(card))
    out = tmp_path / "prefix.json"
    zoo_retrain_prefix.main([str(moved), "--epochs", "2", "--data", str(tiny_data),
                             "--work", str(tmp_path / "w"), "--out", str(out), "--timeout", "600"])
    res = json.loads(out.read_text())
    assert res["identical"] is False
    assert res["first_difference"]["epoch"] == 2
    assert list(res["first_difference"]["fields"]) == ["val_mpjpe"]
    assert res["rows"][0]["identical"] is True
    assert 0 < res["first_difference"]["fields"]["val_mpjpe"]["abs_diff"] < 1e-15


def test_epochs_beyond_the_history_is_refused(three_epoch_run, tmp_path):
    with pytest.raises(SystemExit, match="1..3"):
        zoo_retrain_prefix.main([str(three_epoch_run), "--epochs", "4", "--out", str(tmp_path / "x.json")])
