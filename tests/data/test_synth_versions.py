"""Synthetic generator versions: the v2 default's split, v1 still reachable bit for bit, odd sizes.

Everything here generates small configs (seconds); the full default set is never generated.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest

from edgepose.data import open_dataset, split_files
from edgepose.data.synth import SynthConfig, default_config, synthesize
from edgepose.data.synth.generate import GENERATOR_VERSION, GENERATOR_VERSIONS
from edgepose.data.synth.recording import V1_DEFAULT, V2_DEFAULT, mark_index

from tests.conftest import TINY


def test_v2_is_the_default_and_its_split_holds_60_val_and_test_recordings():
    cfg = default_config()
    assert GENERATOR_VERSION == 2 and GENERATOR_VERSIONS == (1, 2)
    assert cfg == V2_DEFAULT == SynthConfig(train_stride=5) and cfg.generator_version == 2
    recs = cfg.recordings()
    train, val, test = split_files(len(recs))
    assert len(val) >= 60 and len(test) >= 60
    # five times the v1 default's recordings; training files cut every 5 packets, the held-out
    # ones every 20 (20 back-to-back windows in 4 s), so evaluation stays as cheap as before
    assert len(recs) >= 5 * len(V1_DEFAULT.recordings())
    strides = cfg.file_strides(len(recs))
    assert {strides[f] for f in train} == {5} and {strides[f] for f in val + test} == {20}
    per_file = {st: len(cfg.window_starts(st)) for st in (5, 20)}
    assert per_file == {5: 77, 20: 20}
    assert len(train) * 77 + len(val + test) * 20 == 25_158


def test_v2_default_tests_generalisation_not_memorisation():
    """Every (activity, floor mark) of a held-out recording is performed in training by another
    subject, and every held-out subject appears in training."""
    cfg = default_config()
    recs = cfg.recordings()
    train, val, test = split_files(len(recs))
    seen = {}
    for f in train:
        s, a, k = recs[f]
        seen.setdefault((a, mark_index(cfg, s, a, k)), set()).add(s)
    train_subjects = {recs[f][0] for f in train}
    for f in val + test:
        s, a, k = recs[f]
        assert seen.get((a, mark_index(cfg, s, a, k)), set()) - {s}, recs[f]
        assert s in train_subjects


def test_v1_default_is_the_old_default():
    v1 = default_config("wiflow", 1)
    assert v1 == V1_DEFAULT and v1.generator_version == 1
    assert (v1.subjects, v1.takes, v1.duration_s, v1.window, v1.stride) == (4, 3, 8.0, 20, 8)
    assert len(v1.recordings()) == 84 and len(v1.recordings()) * len(v1.window_starts()) == 8232
    mm = default_config("mmfi", 1)
    assert (mm.subjects, mm.takes, len(mm.window_starts()), mm.generator_version) == (4, 1, 297, 1)
    with pytest.raises(ValueError, match="generator version"):
        default_config("wiflow", 3)


def test_v1_output_is_byte_identical_to_before(tmp_path):
    """Version 1 is what the first zoo was fingerprinted on: the tiny config under v1 comes out
    exactly as before versions existed (fingerprint and file bytes recorded then)."""
    meta = synthesize(tmp_path / "v1", replace(TINY, generator_version=1))
    assert meta["generator_version"] == 1 and meta["config"]["generator_version"] == 1
    assert open_dataset(tmp_path / "v1").fingerprint == \
        "d6ca17758c58ecd56947429130fbc3863bbaf35b00033d94ee386702a968cb6c"
    sha = {name: hashlib.sha256((tmp_path / "v1" / name).read_bytes()).hexdigest()
           for name in ("csi_windows.npy", "all_keypoints.npy")}
    assert sha == {"csi_windows.npy": "f82236a516588e56df161bd2cf50fc4daaef8fdfb396c807d58c052f68c72ce9",
                   "all_keypoints.npy": "97293f5bcb88c2cafc12ca6136a14395dd7d6bbf9d955225910058dfcde62498"}


def test_v2_differs_from_v1_and_records_its_version(tmp_path, tiny_data):
    meta = json.loads((tiny_data / "synth_meta.json").read_text())
    assert meta["generator_version"] == 2 and meta["config"]["generator_version"] == 2
    synthesize(tmp_path / "v1", replace(TINY, generator_version=1))
    a, b = open_dataset(tiny_data), open_dataset(tmp_path / "v1")
    assert a.fingerprint != b.fingerprint and a.file_ids == b.file_ids and len(a) == len(b)
    # v2 follows the lab protocol: every take of (subject, activity) on the same mark
    recs = TINY.recordings()
    assert [mark_index(TINY, *r) for r in recs] == [(s + a) % 4 for s, a, _ in recs]
    x2, _ = a.read(np.flatnonzero(~a.corrupt_mask()))
    assert np.isfinite(x2).all() and 0 <= x2.min() and x2.max() < 1.5


def test_unknown_version_is_refused(tmp_path):
    with pytest.raises(ValueError, match="generator version"):
        synthesize(tmp_path / "x", replace(TINY, generator_version=9))
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("duration, stride, per_file", [(0.2, 20, 1), (2.0, 5, 37)])
def test_odd_window_counts(tmp_path, duration, stride, per_file):
    cfg = SynthConfig(seed=1, subjects=1, activities=("waving", "jumping"), takes=2, duration_s=duration,
                      stride=stride, corrupt_windows_per_file=1)
    meta = synthesize(tmp_path / "d", cfg)
    ds = open_dataset(tmp_path / "d")
    assert meta["windows_per_file"] == per_file and len(ds) == 4 * per_file == meta["windows"]
    assert ds.n_files == 4 and ds.window_shape == (540, 20)
    # damage stays within the file, one corrupt window in each non-empty split
    n_split = sum(1 for lst in split_files(4) if lst)
    assert ds.corruption_report()["windows"] == n_split


def test_train_stride_cuts_training_files_densely_and_leaves_held_out_windows_alone(tmp_path):
    """``train_stride`` adds windows to the training files only: validation and test windows
    (and their damage) are byte for byte those of the same config without it, the training
    windows on the coarse grid are among the dense ones, and damage lands on the same packets."""
    base = SynthConfig(seed=3, subjects=2, activities=("walking", "waving", "jumping"), takes=2,
                       duration_s=1.3, stride=10, corrupt_windows_per_file=2)
    dense = replace(base, train_stride=5)
    synthesize(tmp_path / "base", base)
    meta = synthesize(tmp_path / "dense", dense)
    b, d = open_dataset(tmp_path / "base"), open_dataset(tmp_path / "dense")
    assert (meta["windows_per_file"], meta["train_windows_per_file"]) == (12, 23)
    train, val, test = split_files(12)
    assert meta["windows"] == len(d) == 23 * len(train) + 12 * (len(val) + len(test)) == 23 * 8 + 12 * 4
    assert d.fingerprint != b.fingerprint
    for name in ("val", "test"):
        ib, id_ = b.indices(name, clean=False), d.indices(name, clean=False)
        assert np.array_equal(np.asarray(b.windows[ib]), np.asarray(d.windows[id_]), equal_nan=True)
        assert np.array_equal(b.keypoints[ib], d.keypoints[id_])
        assert np.array_equal(b.corrupt_mask()[ib], d.corrupt_mask()[id_])
    for f in train:
        wb, wd = np.flatnonzero(b.window_file == f), np.flatnonzero(d.window_file == f)
        assert len(wb) == 12 and len(wd) == 23
        coarse = wd[::2]  # windows starting every 10 packets
        assert np.array_equal(np.asarray(b.windows[wb]), np.asarray(d.windows[coarse]), equal_nan=True)
        assert np.array_equal(b.keypoints[wb], d.keypoints[coarse])
        assert np.array_equal(d.corrupt_mask()[wd[1::2]], np.zeros(11, bool))  # in-between windows stay clean
    assert d.corruption_report()["windows"] == b.corruption_report()["windows"] == 2 * 3


def test_train_stride_must_divide_stride_and_is_wiflow_only(tmp_path):
    from click.testing import CliRunner

    from edgepose.cli.data_cmd import synth

    with pytest.raises(ValueError, match="train_stride 3 must be a positive divisor of stride 10"):
        synthesize(tmp_path / "x", replace(TINY, stride=10, train_stride=3))
    with pytest.raises(ValueError, match="train_stride must be None"):
        synthesize(tmp_path / "m", replace(default_config("mmfi"), subjects=1, train_stride=5), layout="mmfi")
    assert not (tmp_path / "x").exists() and not (tmp_path / "m").exists()
    runner = CliRunner()
    args = ["--subjects", "1", "--activities", "waving", "--duration", "0.4", "--takes", "1"]
    res = runner.invoke(synth, ["--out", str(tmp_path / "c"), "--stride", "8", *args])
    assert res.exit_code == 2 and "--train-stride 5 (the default) must divide --stride 8" in res.output
    res = runner.invoke(synth, ["--out", str(tmp_path / "d"), "--stride", "8", "--train-stride", "0", *args])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "d" / "synth_meta.json").read_text())
    assert meta["config"]["train_stride"] is None and meta["config"]["stride"] == 8
    res = runner.invoke(synth, ["--out", str(tmp_path / "e"), "--layout", "mmfi", "--train-stride", "5", *args])
    assert res.exit_code == 2 and "wiflow only" in res.output
    assert not (tmp_path / "c").exists() and not (tmp_path / "e").exists()


def test_mmfi_layout_on_v2_and_v1(tmp_path):
    cfg = replace(default_config("mmfi"), subjects=1, activities=("waving", "squatting"), duration_s=0.5,
                  corrupt_windows_per_file=0)
    assert cfg.generator_version == 2
    meta = synthesize(tmp_path / "m2", cfg, layout="mmfi")
    assert meta["generator_version"] == 2 and meta["layout"] == "mmfi"
    ds = open_dataset(tmp_path / "m2")
    assert ds.format_name == "mmfi" and ds.window_shape == (342, 10) and len(ds) == 2 * 5
    assert ds.layout.n_joints == 17
    synthesize(tmp_path / "m1", replace(cfg, generator_version=1), layout="mmfi")
    d1 = open_dataset(tmp_path / "m1")
    assert d1.file_ids == ds.file_ids and d1.fingerprint != ds.fingerprint
    assert json.loads((tmp_path / "m1" / "synth_meta.json").read_text())["generator_version"] == 1


def test_cli_generator_version(tmp_path):
    from click.testing import CliRunner

    from edgepose.cli.data_cmd import synth

    runner = CliRunner()
    args = ["--subjects", "1", "--activities", "waving", "--duration", "0.4", "--takes", "1"]
    res = runner.invoke(synth, ["--generator-version", "1", "--out", str(tmp_path / "a"), *args])
    assert res.exit_code == 0, res.output
    assert "generator v1" in res.output
    meta = json.loads((tmp_path / "a" / "synth_meta.json").read_text())
    assert meta["generator_version"] == 1 and meta["config"]["stride"] == 8  # v1's default stride
    res = runner.invoke(synth, ["--out", str(tmp_path / "b"), *args])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "b" / "synth_meta.json").read_text())
    assert meta["generator_version"] == 2 and meta["config"]["stride"] == 20
    assert meta["config"]["train_stride"] == 5
    res = runner.invoke(synth, ["--generator-version", "3", "--out", str(tmp_path / "c"), *args])
    assert res.exit_code == 2 and not (tmp_path / "c").exists()


def test_a_v1_card_regenerates_its_data(tmp_path):
    """Cards written before versions were a config field: their config has no
    ``generator_version``, their ``dataset.synth`` says 1; the zoo regenerates v1 data."""
    from edgepose import zoo

    cfg = replace(TINY, subjects=1, activities=("waving",), generator_version=1)
    synthesize(tmp_path / "orig", cfg)
    meta = json.loads((tmp_path / "orig" / "synth_meta.json").read_text())
    conf = {k: v for k, v in meta["config"].items() if k != "generator_version"}
    card = {"format": "edgepose-checkpoint",
            "dataset": {"fingerprint": open_dataset(tmp_path / "orig").fingerprint,
                        "synth": {"generator": "edgepose.data.synth", "generator_version": 1, "layout": "wiflow",
                                  "config": conf}}}
    out = zoo.default_dataset(card, cache_dir=tmp_path / "cache")
    assert open_dataset(out).fingerprint == card["dataset"]["fingerprint"]
    card["dataset"]["synth"]["generator_version"] = 7
    with pytest.raises(Exception, match="generator v7"):
        zoo.default_dataset(card, cache_dir=tmp_path / "cache2")
