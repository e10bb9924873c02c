"""Dataset readers, corruption detection and the synthetic generator."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest

from edgepose.data import open_dataset, split_files
from edgepose.data.synth import SynthConfig, synthesize
from edgepose.data.wiflow import interpolate_missing, read_openpose_csv
from edgepose.errors import EdgeposeError
from edgepose.io import load_npz

from tests.conftest import TINY


def test_synthetic_dataset_shapes_and_corruption(tiny_data):
    ds = open_dataset(tiny_data)
    assert ds.format_name == "wiflow"
    assert len(ds) == 10 * 15 and ds.window_shape == (540, 20) and ds.n_files == 10
    assert ds.keypoints.shape == (150, 15, 2) and ds.keypoints.dtype == np.float32
    rep = ds.corruption_report()
    assert rep["windows"] == 3 * TINY.corrupt_windows_per_file
    assert len(rep["files"]) == 3
    x, _ = ds.read(np.arange(len(ds)))
    bad = ~np.isfinite(x).all(axis=(1, 2)) | (np.abs(np.nan_to_num(x, posinf=0, neginf=0)).max(axis=(1, 2)) > 1.5)
    assert (bad == ds.corrupt_mask()).all()
    # every split has corrupt windows, and clean indices exclude them
    for split in ("train", "val", "test"):
        assert len(ds.indices(split, clean=False)) > len(ds.indices(split, clean=True))
        assert not ds.corrupt_mask()[ds.indices(split)].any()
    # clean windows are in the physical range, labels are on the 1280x720 image in pixel/1000
    clean = x[~ds.corrupt_mask()]
    assert 0 <= clean.min() and clean.max() < 1.5
    assert 0 < ds.keypoints[..., 0].min() and ds.keypoints[..., 0].max() < 1.28
    # (a foot of a subject walking towards the camera on a near mark may leave the frame by a few pixels)
    assert 0 < ds.keypoints[..., 1].min() and ds.keypoints[..., 1].max() < 0.72 + 0.01


def test_zero_filled_read(tiny_data):
    ds = open_dataset(tiny_data)
    bad = np.flatnonzero(ds.corrupt_mask())
    assert len(bad) == 3 * TINY.corrupt_windows_per_file  # an empty selection would pass trivially
    x, _ = ds.read(bad[::-1], zero_fill_corrupt=True)
    assert (x == 0).all()
    # clean windows among them are left alone
    both = np.concatenate([bad, np.flatnonzero(~ds.corrupt_mask())[:3]])
    x, _ = ds.read(both, zero_fill_corrupt=True)
    assert (x[: len(bad)] == 0).all() and (np.abs(x[len(bad) :]).max(axis=(1, 2)) > 0).all()


def test_synthesis_is_deterministic_per_seed(tmp_path, tiny_data):
    from dataclasses import replace

    cfg = replace(TINY, subjects=1, activities=("walking",), corrupt_windows_per_file=0)
    synthesize(tmp_path / "a", cfg)
    a = np.load(tmp_path / "a" / "csi_windows.npy")
    ref = open_dataset(tiny_data)
    # the same recording (seed, subject 0, walking, take 0) comes out identical on its own
    ok = ~ref.corrupt_mask()[: len(a)]
    assert ok.sum() > 5 and np.array_equal(a[ok], np.asarray(ref.windows[: len(a)])[ok])
    synthesize(tmp_path / "b", replace(cfg, seed=4))
    assert not np.array_equal(a, np.load(tmp_path / "b" / "csi_windows.npy"))
    meta = json.loads((tmp_path / "a" / "synth_meta.json").read_text())
    assert -22 <= meta["dynamic_to_static_db_median"] <= -12


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_csv_labels_match_keypoint_array(tmp_path, tiny_data):
    """Rewrite the labels as per-file OpenPose CSVs (author's absolute paths, some joints
    missing) and read them back through the CSV path."""
    d = _copy(tiny_data, tmp_path / "csv")
    ds = open_dataset(d)
    kp = np.load(d / "all_keypoints.npy")
    info = np.load(d / "window_info.npz")
    finfo = dict(np.load(d / "file_info.npz"))
    frames_per_file = len(kp) // ds.n_files
    names = []
    for f in range(ds.n_files):
        rows = kp[f * frames_per_file : (f + 1) * frames_per_file]
        body25 = np.zeros((len(rows), 25, 2))
        body25[:, :15] = rows * 1000.0
        body25[19, 4] = 0.0  # a missing right wrist in frame 19, the label of each file's first window
        flat = body25.reshape(len(rows), 50)
        lines = ["frame," + ",".join(f"c{i}" for i in range(50))]
        lines += [f"{i}," + ",".join(f"{v:.6f}" for v in r) for i, r in enumerate(flat)]
        (d / "labels").mkdir(exist_ok=True)
        (d / "labels" / f"file{f}.csv").write_text("\n".join(lines))
        names.append(f"C:\\Users\\author\\wiflow\\file{f}.csv")
    (d / "all_keypoints.npy").unlink()
    finfo["keypoints_files"] = np.array(names, dtype=object)  # like the real archive: a pickle
    np.savez(d / "file_info.npz", **finfo)
    np.savez(d / "window_info.npz", window_to_file=info["window_to_file"],
             window_to_frame=info["window_to_frame"] % frames_per_file)
    ds2 = open_dataset(d)
    first = np.flatnonzero(info["window_to_frame"] % frames_per_file == 19)
    assert len(first) == ds.n_files
    others = np.setdiff1d(np.arange(len(ds)), first)
    assert np.allclose(ds2.keypoints[others], ds.keypoints[others], atol=1e-5)
    # the missing wrist is interpolated between its neighbours in time, not read as (0, 0)
    for f, w in enumerate(first):
        rows = kp[f * frames_per_file : (f + 1) * frames_per_file]
        assert np.allclose(ds2.keypoints[w, 4], (rows[18, 4] + rows[20, 4]) / 2, atol=1e-5)
        assert np.allclose(np.delete(ds2.keypoints[w], 4, axis=0), np.delete(ds.keypoints[w], 4, axis=0), atol=1e-5)


def test_interpolation_of_missing_joints():
    kp = np.zeros((5, 1, 2))
    kp[:, 0, 0] = [0, 2, 0, 4, 0]
    kp[:, 0, 1] = [0, 1, 0, 1, 0]
    out = interpolate_missing(kp)
    assert out[:, 0, 0].tolist() == [2, 2, 3, 4, 4]


def test_csv_with_wrong_column_count(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("h\n" + "\n".join(",".join(["1"] * 30) for _ in range(3)))
    with pytest.raises(EdgeposeError, match="bad.csv.*30 columns"):
        read_openpose_csv(p)


class _Payload:
    """Unpickling this calls ``open(marker, "w")``, which creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _hostile_npz(path, marker, **plain):
    """An ``.npz`` whose ``keypoints_files`` object array carries :class:`_Payload`."""
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = "file0.csv", _Payload(marker)
    with zipfile.ZipFile(path, "w") as zf:
        for key, value in {**plain, "keypoints_files": arr}.items():
            with zf.open(f"{key}.npy", "w") as f:
                np.lib.format.write_array(f, value, allow_pickle=True)


def test_object_arrays_load_without_running_pickle_code(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, ids=np.array(["a", "b"], dtype=object), n=np.arange(3))
    out = load_npz(good)
    assert out["ids"].tolist() == ["a", "b"] and out["n"].tolist() == [0, 1, 2]
    # the payload is live: numpy's own loader with pickles allowed runs it
    live = tmp_path / "live"
    _hostile_npz(tmp_path / "live.npz", live)
    with np.load(tmp_path / "live.npz", allow_pickle=True) as npz:
        npz["keypoints_files"][1].close()  # the file object open() returned
    assert live.exists()
    # edgepose's loader refuses it, names the file, and never runs it
    marker = tmp_path / "marker"
    _hostile_npz(tmp_path / "evil.npz", marker)
    with pytest.raises(EdgeposeError, match=r"evil\.npz: member 'keypoints_files' .*refused global"):
        load_npz(tmp_path / "evil.npz")
    assert not marker.exists()


def test_hostile_file_info_is_refused_and_never_runs(tmp_path, tiny_data):
    d = _copy(tiny_data, tmp_path / "hostile")
    finfo = load_npz(d / "file_info.npz")
    marker = tmp_path / "marker"
    _hostile_npz(d / "file_info.npz", marker, file_ids=finfo["file_ids"], window_ranges=finfo["window_ranges"])
    with pytest.raises(EdgeposeError, match="refused") as err:
        open_dataset(d)
    assert err.value.path == d / "file_info.npz"
    assert not marker.exists()


@pytest.mark.parametrize("damage, message", [
    ("truncate", "truncated"),
    ("missing", "missing csi_windows.npy"),
    ("dtype", "expected float32"),
    ("count", "window_to_file has shape"),
    ("ranges", "disagrees with window_to_file"),
])
def test_bad_input_gives_one_clear_error(tmp_path, tiny_data, damage, message):
    d = _copy(tiny_data, tmp_path / damage)
    w = d / "csi_windows.npy"
    if damage == "truncate":
        data = w.read_bytes()
        w.write_bytes(data[: len(data) // 2])
    elif damage == "missing":
        w.unlink()
    elif damage == "dtype":
        np.save(w, np.load(w).astype(np.float64))
    elif damage == "count":
        info = dict(np.load(d / "window_info.npz"))
        np.savez(d / "window_info.npz", window_to_file=info["window_to_file"][:-1],
                 window_to_frame=info["window_to_frame"])
    elif damage == "ranges":
        finfo = dict(np.load(d / "file_info.npz"))
        finfo["window_ranges"] = finfo["window_ranges"][::-1].copy()
        np.savez(d / "file_info.npz", **finfo)
    with pytest.raises(EdgeposeError, match=message) as err:
        open_dataset(d)
    assert str(d) in str(err.value)


def test_mmfi_layout(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    root = tmp_path / "MMFi" / "MMFi_Dataset"  # the doubled top folder of some archives
    n_frames = 6
    for env, subj in (("E01", "S01"), ("E01", "S02"), ("E02", "S11")):
        for act in ("A01", "A02"):
            seq = root / env / subj / act
            (seq / "wifi-csi").mkdir(parents=True)
            np.save(seq / "ground_truth.npy", rng.normal(0, 0.3, (n_frames, 17, 3)))
            for i in range(1, n_frames + 1):
                amp = rng.uniform(20, 40, (3, 114, 10))
                mat = {"CSIamp": amp}
                if i == 2:
                    amp[0, 5, 3] = np.inf
                    amp[1, 7, 3] = np.nan
                if i == 4 and subj == "S02":  # a packet with no finite value: nothing to repair from
                    amp[:, :, 6] = np.nan
                if i != 3:  # one frame without phase
                    mat["CSIphase"] = rng.uniform(-3, 3, (3, 114, 10))
                savemat(seq / "wifi-csi" / f"frame{i:03d}.mat", mat)
            (seq / "wifi-csi" / f"frame{n_frames:03d}.mat").write_bytes(b"")  # zero-byte frame
    ds = open_dataset(tmp_path / "MMFi")
    assert ds.format_name == "mmfi" and ds.n_files == 6
    assert ds.file_ids == [f"{e}/{s}/{a}" for e, s in (("E01", "S01"), ("E01", "S02"), ("E02", "S11"))
                           for a in ("A01", "A02")]
    assert len(ds) == 6 * (n_frames - 1) and ds.window_shape == (342, 10)
    assert ds.layout.n_joints == 17 and ds.layout.torso == (14, 4)
    x, y = ds.read(np.arange(len(ds)))
    corrupt = ds.corrupt_mask()
    # frame 4 of both S02 sequences is the only corrupt window: all NaN, as the toolbox leaves it
    assert np.flatnonzero(corrupt).tolist() == [2 * 5 + 3, 3 * 5 + 3]
    assert np.isnan(x[corrupt]).all()
    clean = x[~corrupt]
    assert np.isfinite(clean).all() and (clean.min(axis=(1, 2)) == 0).all() and (clean.max(axis=(1, 2)) == 1).all()
    assert y.shape == (len(ds), 17, 2)
    gt = np.load(root / "E01" / "S02" / "A01" / "ground_truth.npy")
    assert np.array_equal(y[10:15], gt[:5, :, :2].astype(np.float32))  # the zero-byte frame 6 is dropped


MMFI_SMALL = SynthConfig(seed=5, subjects=2, activities=("walking", "squatting", "waving", "jumping"), takes=1,
                         duration_s=2.0, window=10, stride=10, corrupt_windows_per_file=2)


@pytest.fixture(scope="module")
def mmfi_synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("mmfi") / "synth"
    meta = synthesize(out, MMFI_SMALL, layout="mmfi")
    return out, meta


def test_mmfi_synth_tree_matches_the_real_layout(mmfi_synth):
    from scipy.io import loadmat

    out, meta = mmfi_synth
    seqs = sorted(str(p.relative_to(out)) for p in out.glob("E*/S*/A*"))
    assert seqs == [f"E01/S0{s}/A0{a}" for s in (1, 2) for a in (1, 3, 5, 7)]  # fixed action codes
    frames = sorted((out / "E01/S01/A01/wifi-csi").iterdir())
    assert [f.name for f in frames] == [f"frame{i:03d}.mat" for i in range(1, 21)]
    mat = loadmat(next(f for f in frames if f.stat().st_size))
    assert mat["CSIamp"].shape == (3, 114, 10) and mat["CSIamp"].dtype == np.float64
    assert mat["CSIphase"].shape == (3, 114, 10) and np.abs(mat["CSIphase"]).max() <= np.pi
    gt = np.load(out / "E01/S01/A01/ground_truth.npy")
    assert gt.shape == (20, 17, 3) and gt.dtype == np.float64
    empty = [p for p in out.glob("E*/S*/A*/wifi-csi/*.mat") if p.stat().st_size == 0]
    names = sorted(str(p.relative_to(out))[: -len(".mat")].replace("/wifi-csi", "") for p in empty)
    assert names == sorted(meta["zero_byte_frames"])
    assert len(empty) == 3  # one in each damaged sequence


def test_mmfi_synth_opens_with_17_joints_split_and_corrupt_windows(mmfi_synth):
    out, meta = mmfi_synth
    ds = open_dataset(out)
    assert ds.format_name == "mmfi" and ds.window_shape == (342, 10) and ds.n_files == 8
    assert ds.layout.name == "h36m-17" and ds.keypoints.shape == (len(ds), 17, 2)
    assert len(ds) == 8 * 20 - 3 == meta["windows"]
    # file-level split: the reference rule over the sequence order
    assert ds.split() == dict(zip(("train", "val", "test"), split_files(8)))
    rep = ds.corruption_report()
    assert rep["windows"] == 3 * MMFI_SMALL.corrupt_windows_per_file
    assert rep["files"] == sorted(meta["corrupt_files"]) and len(rep["files"]) == 3
    for split in ("train", "val", "test"):  # one damaged sequence in each split
        assert len(ds.indices(split, clean=False)) > len(ds.indices(split, clean=True)) > 0
    x, y = ds.read(np.arange(len(ds)))
    clean = x[~ds.corrupt_mask()]
    assert np.isfinite(clean).all() and clean.min() == 0 and clean.max() == 1  # repaired frames included
    assert len(meta["repaired_frames"]) == 6
    # camera frame in metres, y down: ankles below the head, a body-sized torso diagonal
    assert (y[:, 3, 1] > y[:, 10, 1]).all() and (y[:, 6, 1] > y[:, 10, 1]).all()
    torso = np.linalg.norm(y[:, 14] - y[:, 4], axis=-1)
    assert 0.3 < torso.min() and torso.max() < 0.9


def test_mmfi_and_wiflow_synth_share_the_motion(tmp_path, mmfi_synth):
    """The same recording in both layouts: the MM-Fi label (camera frame, metres) projected
    through the WiFlow camera gives the WiFlow label (pixel/1000) of the same packet."""
    from dataclasses import replace

    from edgepose.data.synth.scene import Camera

    out, _ = mmfi_synth
    synthesize(tmp_path / "w", replace(MMFI_SMALL, subjects=1, corrupt_windows_per_file=0))
    kp = np.load(tmp_path / "w" / "all_keypoints.npy")[2 * 200 : 3 * 200]  # every packet of waving
    gt = np.load(out / "E01" / "S01" / "A05" / "ground_truth.npy")  # frame i ends at packet 10 i + 9
    cam = Camera()
    u = (cam.width_px / 2 + cam.focal_px * gt[..., 0] / gt[..., 2]) / 1000
    v = (cam.height_px / 2 + cam.focal_px * gt[..., 1] / gt[..., 2]) / 1000
    body25_of_h36m = {0: 8, 1: 9, 2: 10, 3: 11, 4: 12, 5: 13, 6: 14, 8: 1, 11: 5, 12: 6, 13: 7, 14: 2, 15: 3, 16: 4}
    packets = np.arange(20) * 10 + 9
    for h, b in body25_of_h36m.items():
        assert np.allclose(u[:, h], kp[packets, b, 0], atol=1e-5) and np.allclose(v[:, h], kp[packets, b, 1], atol=1e-5)


def test_default_configs_and_layout_errors(tmp_path):
    from edgepose.data.synth import LAYOUTS, default_config

    assert default_config() == SynthConfig(train_stride=5) == default_config("wiflow")
    mm = default_config("mmfi")
    assert (mm.takes, mm.window, mm.stride, len(mm.window_starts())) == (1, 10, 10, 297)
    assert LAYOUTS == ("wiflow", "mmfi")
    with pytest.raises(ValueError, match="unknown layout"):
        synthesize(tmp_path / "x", layout="mmwave")
    with pytest.raises(ValueError, match="takes must be 1"):
        synthesize(tmp_path / "y", MMFI_SMALL.__class__(takes=2), layout="mmfi")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_synth_cli_layout_option(tmp_path):
    from click.testing import CliRunner

    from edgepose.cli.data_cmd import synth
    from edgepose.data.synth import LAYOUTS

    choice = next(p for p in synth.params if p.name == "layout").type
    assert tuple(choice.choices) == LAYOUTS
    runner = CliRunner()
    res = runner.invoke(synth, ["--layout", "mmfi", "--takes", "2", "--out", str(tmp_path / "a")])
    assert res.exit_code == 2 and "--takes must be 1" in res.output and not (tmp_path / "a").exists()
    res = runner.invoke(synth, ["--layout", "mmfi", "--out", str(tmp_path / "b"), "--subjects", "1",
                                "--activities", "waving", "--duration", "0.5"])
    assert res.exit_code == 0, res.output
    ds = open_dataset(tmp_path / "b")
    assert ds.format_name == "mmfi" and len(ds) == 5 and ds.window_shape == (342, 10)
