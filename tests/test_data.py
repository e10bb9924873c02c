"""Dataset readers, corruption detection and the synthetic generator."""

from __future__ import annotations

import json
import pickle
import shutil
import zipfile

import numpy as np
import pytest

from edgepose.data import open_dataset
from edgepose.data.synth import synthesize
from edgepose.data.wiflow import interpolate_missing, read_openpose_csv
from edgepose.errors import EdgeposeError
from edgepose.io import load_npz

from .conftest import TINY


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
    assert 0 < ds.keypoints[..., 1].min() and ds.keypoints[..., 1].max() < 0.72


def test_zero_filled_read(tiny_data):
    ds = open_dataset(tiny_data)
    bad = np.flatnonzero(ds.corrupt_mask())
    x, _ = ds.read(bad[::-1], zero_fill_corrupt=True)
    assert (x == 0).all()


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
        body25[3, 4] = 0.0  # a missing wrist in frame 3
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
    assert np.allclose(ds2.keypoints, ds.keypoints, atol=1e-5)


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


def test_object_arrays_load_without_running_pickle_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    good = tmp_path / "good.npz"
    np.savez(good, ids=np.array(["a", "b"], dtype=object), n=np.arange(3))
    out = load_npz(good)
    assert out["ids"].tolist() == ["a", "b"] and out["n"].tolist() == [0, 1, 2]
    bad = tmp_path / "evil.npz"
    arr = np.empty(1, dtype=object)
    arr[0] = Evil()
    with zipfile.ZipFile(bad, "w") as zf:
        with zf.open("ids.npy", "w") as f:
            np.lib.format.write_array(f, arr, allow_pickle=True)
    with pytest.raises(EdgeposeError, match="evil.npz.*refused"):
        load_npz(bad)
    assert pickle  # the module is only used to build the hostile file above


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
                if i != 3:  # one frame without phase
                    mat["CSIphase"] = rng.uniform(-3, 3, (3, 114, 10))
                savemat(seq / "wifi-csi" / f"frame{i:03d}.mat", mat)
            (seq / "wifi-csi" / f"frame{n_frames:03d}.mat").write_bytes(b"")  # zero-byte frame
    ds = open_dataset(tmp_path / "MMFi")
    assert ds.format_name == "mmfi" and ds.n_files == 6
    assert len(ds) == 6 * (n_frames - 1) and ds.window_shape == (342, 10)
    assert ds.layout.n_joints == 17 and ds.layout.torso == (14, 4)
    x, y = ds.read(np.arange(len(ds)))
    assert np.isfinite(x).all() and x.min() == 0.0 and x.max() == 1.0
    assert y.shape == (len(ds), 17, 2)
    assert not ds.corrupt_mask().any()
