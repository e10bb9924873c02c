"""Property-based tests: readers and the metric end in a valid result or an ``EdgeposeError``.

Inputs are generated (random shapes, dtypes, NaN/inf, truncated or zero-size files, wrong CSV
column counts, file counts down to one) and every public step a user's data goes through is run
on them: open, corruption scan, read, split, fingerprint; PCK, MPJPE and the streaming meter.
Any exception other than :class:`EdgeposeError` fails the test. Examples are derandomised (the
same ones every run, so CI is reproducible) and no example database is written; set
``EDGEPOSE_HYPOTHESIS_EXAMPLES`` to run more of them while hunting bugs.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edgepose.data import open_dataset
from edgepose.data.wiflow import read_openpose_csv
from edgepose.errors import EdgeposeError
from edgepose.io import load_npz, open_npy
from edgepose.metrics import MIN_TORSO, PoseMeter, mpjpe, pck

SCALE = int(os.environ.get("EDGEPOSE_HYPOTHESIS_EXAMPLES", "1"))
RANDOM = bool(os.environ.get("EDGEPOSE_HYPOTHESIS_EXAMPLES"))


def _settings(n: int) -> settings:
    return settings(max_examples=n * SCALE, deadline=None, derandomize=not RANDOM, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _valid_or_edgepose_error(fn, *args, **kwargs):
    """``fn(*args)``'s result, or ``None`` when it raised :class:`EdgeposeError` (anything else
    propagates and fails the test)."""
    name = getattr(fn, "__name__", "call")
    try:
        out = fn(*args, **kwargs)
    except EdgeposeError as exc:
        assert str(exc).strip() and "\n" not in str(exc)  # one line
        event(f"{name}: EdgeposeError")
        return None
    event(f"{name}: ok")
    return out


# ---------------------------------------------------------------------------------------------
# strategies

DTYPES = ["<f4", "<f8", "<f2", "<i2", "<i8", "|u1", "|b1", "<c8", "<U3"]
POISON = st.sampled_from([np.nan, np.inf, -np.inf, 3.4e38, -1e300, 0.0])


@st.composite
def arrays(draw, max_dims: int = 3, max_side: int = 4, dtypes=DTYPES) -> np.ndarray:
    """A small array of a random dtype and shape, sometimes with NaN/inf/huge values."""
    shape = tuple(draw(st.lists(st.integers(0, max_side), max_size=max_dims)))
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = rng.normal(0, 2, shape)
    if dtype.kind in "fc" and values.size and draw(st.booleans()):
        values.flat[draw(st.integers(0, values.size - 1))] = draw(POISON)
    if dtype.kind == "U":
        return values.astype(np.int64).astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(dtype)


@st.composite
def damage(draw):
    """How to spoil one file: ``None`` (leave it), ``("cut", fraction)``, ``("flip", fraction, byte)``
    or ``("empty",)``."""
    kind = draw(st.sampled_from(["none", "none", "cut", "flip", "empty"]))
    if kind == "cut":
        return ("cut", draw(st.floats(0, 1, exclude_max=True)))
    if kind == "flip":
        return ("flip", draw(st.floats(0, 1, exclude_max=True)), draw(st.integers(0, 255)))
    return None if kind == "none" else ("empty",)


def _spoil(path: Path, how) -> None:
    if how is None:
        return
    data = bytearray(path.read_bytes())
    if how[0] == "empty":
        data = bytearray()
    elif how[0] == "cut":
        data = data[: int(how[1] * len(data))]
    elif how[0] == "flip" and data:
        data[int(how[1] * len(data))] = how[2]
    path.write_bytes(bytes(data))


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=arr.dtype.hasobject)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# .npy / .npz


@_settings(60)
@given(arr=arrays(), how=damage())
def test_open_npy_on_any_bytes(arr, how):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a.npy"
        path.write_bytes(_npy_bytes(arr))
        _spoil(path, how)
        for mmap in (True, False):
            out = _valid_or_edgepose_error(open_npy, path, mmap=mmap)
            if out is not None and how is None:
                assert out.shape == arr.shape and out.dtype == arr.dtype
                assert np.array_equal(np.asarray(out), arr, equal_nan=arr.dtype.kind in "fc")


@st.composite
def object_arrays(draw) -> np.ndarray:
    items = draw(st.lists(st.one_of(st.text(max_size=4), st.integers(-(2**70), 2**70), st.binary(max_size=4),
                                    st.floats(allow_nan=True), st.none()), max_size=4))
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    return arr


@_settings(60)
@given(members=st.dictionaries(st.sampled_from(["file_ids", "window_ranges", "window_to_file", "x"]),
                               st.one_of(arrays(), object_arrays()), min_size=1, max_size=3),
       how=damage())
def test_load_npz_on_any_members_and_damage(members, how):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "info.npz"
        with zipfile.ZipFile(path, "w") as zf:
            for key, value in members.items():
                with zf.open(f"{key}.npy", "w") as f:
                    np.lib.format.write_array(f, value, allow_pickle=True)
        _spoil(path, how)
        out = _valid_or_edgepose_error(load_npz, path)
        if out is None:
            return
        assert set(out) <= set(members)
        for key, value in out.items():
            assert isinstance(value, np.ndarray) and not value.dtype.hasobject
            if how is None:
                assert value.shape == members[key].shape


# ---------------------------------------------------------------------------------------------
# WiFlow layout


def _rarely(draw, p: float = 0.15) -> bool:
    """True with probability about ``p``: each hazard is rare, so most folders still open."""
    return draw(st.integers(0, 99)) < 100 * p


@st.composite
def wiflow_folders(draw):
    """Parameters of a small WiFlow-layout folder and the damage done to it."""
    n_files = draw(st.integers(1, 4))
    per_file = draw(st.lists(st.integers(1, 3), min_size=n_files, max_size=n_files))
    if _rarely(draw):
        per_file[draw(st.integers(0, n_files - 1))] = 0  # a file without windows
    return {
        "per_file": per_file,
        "channels": 0 if _rarely(draw, 0.05) else draw(st.integers(1, 5)),
        "packets": draw(st.integers(1, 4)),
        "dtype": draw(st.sampled_from(["<f8", "<f2", "<i2"])) if _rarely(draw) else "<f4",
        "poison": draw(st.lists(st.tuples(st.integers(0, 10**6), POISON), max_size=3)),
        "labels": draw(st.sampled_from(["npy", "csv"])),
        "label_shape_ok": not _rarely(draw, 0.1),
        "csv_columns": draw(st.sampled_from([50, 49, 30, 0])) if _rarely(draw) else draw(st.sampled_from([51, 52])),
        "csv_token": draw(st.sampled_from(["nan", "inf", "", "x", "1e400", "0"])) if _rarely(draw) else "1.5",
        "frames_ok": not _rarely(draw, 0.1),
        "victim": draw(st.sampled_from(["csi_windows.npy", "window_info.npz", "file_info.npz", "all_keypoints.npy",
                                        "labels/file0.csv"])) if _rarely(draw, 0.3) else None,
        "how": draw(damage()),
        "seed": draw(st.integers(0, 2**16)),
    }


def _write_wiflow(root: Path, p: dict) -> None:
    rng = np.random.default_rng(p["seed"])
    n = sum(p["per_file"])
    windows = rng.uniform(0, 1, (n, p["channels"], p["packets"])).astype(p["dtype"])
    for where, value in p["poison"]:
        if windows.size and windows.dtype.kind == "f":
            with np.errstate(over="ignore"):
                windows.flat[where % windows.size] = value
    np.save(root / "csi_windows.npy", windows)
    w2file = np.repeat(np.arange(len(p["per_file"])), p["per_file"])
    frames_per_file = 5
    w2frame = np.tile(np.arange(4), n)[:n] if p["frames_ok"] else np.full(n, 99)
    ends = np.cumsum(p["per_file"])
    ranges = np.stack([ends - np.asarray(p["per_file"]), ends], 1)
    ids = np.array([f"f{i}" for i in range(len(p["per_file"]))])
    if p["labels"] == "npy":
        shape = (frames_per_file * len(p["per_file"]), 15, 2) if p["label_shape_ok"] else (7, 14, 2)
        np.save(root / "all_keypoints.npy", rng.uniform(0, 1, shape).astype(np.float32))
        w2frame = w2frame + w2file * frames_per_file
        np.savez(root / "file_info.npz", file_ids=ids, window_ranges=ranges)
    else:
        (root / "labels").mkdir()
        names = np.array([f"C:\\data\\file{i}.csv" for i in range(len(p["per_file"]))], dtype=object)
        for i in range(len(p["per_file"])):
            cols = p["csv_columns"]
            rows = ["h," + ",".join(f"c{j}" for j in range(max(cols - 1, 0)))]
            for r in range(frames_per_file):
                vals = [p["csv_token"] if (r == 2 and j == cols - 3) else f"{rng.uniform(0, 1000):.3f}"
                        for j in range(cols)]
                rows.append(",".join(vals))
            (root / "labels" / f"file{i}.csv").write_text("\n".join(rows))
        np.savez(root / "file_info.npz", file_ids=ids, window_ranges=ranges, keypoints_files=names)
    np.savez(root / "window_info.npz", window_to_file=w2file, window_to_frame=w2frame)
    if p["victim"] and (root / p["victim"]).exists():
        _spoil(root / p["victim"], p["how"])


def _exercise(ds) -> None:
    """Every step training, export and evaluation take on a dataset."""
    n = len(ds)
    mask = ds.corrupt_mask()
    assert mask.shape == (n,) and mask.dtype == bool
    x, y = ds.read(np.arange(n)[::-1], zero_fill_corrupt=True)
    assert x.shape == (n, *ds.window_shape) and x.dtype == np.float32
    assert y.shape == (n, ds.layout.n_joints, 2)
    assert np.isfinite(x).all()  # corrupt windows are zero-filled, the rest must be finite
    split = ds.split()
    assert sorted(sum(split.values(), [])) == list(range(ds.n_files))
    for name in ("train", "val", "test"):
        assert not mask[ds.indices(name)].any()
    assert len(ds.fingerprint) == 64
    assert ds.describe()["windows"] == n


def _wiflow_is_sound(p: dict) -> bool:
    """True when none of the hazards that make a WiFlow folder unreadable was drawn (corrupt windows
    are not such a hazard: they are reported and kept out, the folder still opens)."""
    labels_ok = p["label_shape_ok"] if p["labels"] == "npy" else (p["csv_columns"] in (51, 52)
                                                                    and p["csv_token"] == "1.5")
    return (min(p["per_file"]) >= 1 and p["channels"] >= 1 and p["dtype"] == "<f4" and labels_ok
            and p["frames_ok"] and (p["victim"] is None or p["how"] is None))


@_settings(80)
@given(p=wiflow_folders())
def test_wiflow_reader_on_generated_folders(p):
    sound = _wiflow_is_sound(p)
    event(f"sound folder: {sound}")
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        _write_wiflow(root, p)
        if sound:  # a reader that refused everything would pass the rest of this test: a sound folder must open
            ds = open_dataset(root)
        else:
            ds = _valid_or_edgepose_error(open_dataset, root)
        if ds is None:
            return
        assert ds.format_name == "wiflow" and len(ds) == sum(p["per_file"]) and ds.n_files == len(p["per_file"])
        if sound:
            _exercise(ds)
        else:
            _valid_or_edgepose_error(_exercise, ds)


@st.composite
def csv_rows(draw):
    width = draw(st.sampled_from([0, 1, 30, 49, 50])) if _rarely(draw, 0.2) else draw(st.sampled_from([50, 51, 53]))
    rows = []
    for _ in range(draw(st.integers(0, 4))):
        row = [f"{v:.2f}" for v in draw(st.lists(st.floats(-5e3, 5e3), min_size=width, max_size=width))]
        if row and _rarely(draw, 0.3):
            row[draw(st.integers(0, width - 1))] = draw(st.sampled_from(["nan", "inf", "", "x", "1e999", " 3 "]))
        if _rarely(draw, 0.1):
            row = row[:-1]  # a short row
        rows.append(row)
    return rows


@_settings(60)
@given(rows=csv_rows(), header=st.booleans(), raw=st.one_of(st.none(), st.none(), st.none(), st.binary(max_size=40)))
def test_openpose_csv_any_content(rows, header, raw):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "k.csv"
        if raw is not None:
            path.write_bytes(raw)
        else:
            path.write_text("\n".join((["h"] if header else []) + [",".join(r) for r in rows]))
        out = _valid_or_edgepose_error(read_openpose_csv, path)
        if out is not None:
            assert out.ndim == 3 and out.shape[1:] == (15, 2) and out.dtype == np.float32


def test_csv_column_count_is_named(tmp_path):
    """The error for a wrong column count names the file and the count (not just any error)."""
    p = tmp_path / "short.csv"
    p.write_text("h\n" + "\n".join(",".join(["1"] * 49) for _ in range(2)))
    with pytest.raises(EdgeposeError, match=r"short\.csv: has 49 columns"):
        read_openpose_csv(p)


# ---------------------------------------------------------------------------------------------
# MM-Fi layout


@st.composite
def mmfi_folders(draw):
    n_seq = draw(st.integers(1, 3))
    frames = draw(st.integers(1, 3))
    return {
        "seqs": [("E01", f"S0{1 + i // 2}", f"A0{1 + i % 2}") for i in range(n_seq)],
        "frames": frames,
        "gt_frames": draw(st.integers(0, 4)) if _rarely(draw) else frames,
        "gt_shape_ok": not _rarely(draw, 0.1),
        "amp_shape": (0 if _rarely(draw, 0.05) else draw(st.integers(1, 3)), draw(st.integers(1, 5)),
                      draw(st.integers(1, 3))),
        "odd_shape": _rarely(draw, 0.1),
        "dtype": draw(st.sampled_from(["<f4", "<i2", "<c16", "|b1"])) if _rarely(draw) else "<f8",
        "poison": draw(st.lists(st.tuples(st.integers(0, 10**6), POISON), max_size=3)),
        "nan_packet": _rarely(draw, 0.3),
        "no_amp": _rarely(draw, 0.05),
        "zero_byte": draw(st.sets(st.integers(1, 3), max_size=3)) if _rarely(draw, 0.3) else set(),
        "victim": draw(st.sampled_from(["frame", "gt"])) if _rarely(draw, 0.3) else None,
        "how": draw(damage()),
        "seed": draw(st.integers(0, 2**16)),
    }


def _write_mmfi(root: Path, p: dict) -> None:
    from scipy.io import savemat

    rng = np.random.default_rng(p["seed"])
    for k, (e, s, a) in enumerate(p["seqs"]):
        seq = root / e / s / a
        (seq / "wifi-csi").mkdir(parents=True)
        gt_shape = (p["gt_frames"], 17, 3) if p["gt_shape_ok"] else (p["gt_frames"], 15, 2)
        np.save(seq / "ground_truth.npy", rng.normal(0, 1, gt_shape))
        for i in range(1, p["frames"] + 1):
            shape = p["amp_shape"]
            if p["odd_shape"] and k == len(p["seqs"]) - 1 and i == p["frames"]:
                shape = (shape[0] + 1, shape[1], shape[2])
            amp = rng.uniform(10, 40, shape).astype(p["dtype"])
            if amp.dtype.kind == "f":
                for where, value in p["poison"]:
                    if amp.size:
                        amp.flat[where % amp.size] = value
                if p["nan_packet"] and amp.size and i == 1:
                    amp[..., 0] = np.nan
            path = seq / "wifi-csi" / f"frame{i:03d}.mat"
            if i in p["zero_byte"]:
                path.write_bytes(b"")
            else:
                savemat(path, {"CSIphase": rng.uniform(-3, 3, (1, 1, 1))} if p["no_amp"] else {"CSIamp": amp})
    e, s, a = p["seqs"][0]
    victim = {"frame": root / e / s / a / "wifi-csi" / "frame001.mat", "gt": root / e / s / a / "ground_truth.npy"}
    if p["victim"] and victim[p["victim"]].exists():
        _spoil(victim[p["victim"]], p["how"])


def _mmfi_is_sound(p: dict) -> bool:
    """True when no hazard that makes an MM-Fi tree unreadable was drawn (NaN packets and poisoned
    values only make windows corrupt)."""
    return (p["gt_frames"] == p["frames"] and p["gt_shape_ok"] and p["amp_shape"][0] >= 1 and not p["odd_shape"]
            and p["dtype"] == "<f8" and not p["no_amp"] and not p["zero_byte"]
            and (p["victim"] is None or p["how"] is None))


@_settings(60)
@given(p=mmfi_folders())
def test_mmfi_reader_on_generated_folders(p):
    sound = _mmfi_is_sound(p)
    event(f"sound folder: {sound}")
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        _write_mmfi(root, p)
        ds = open_dataset(root) if sound else _valid_or_edgepose_error(open_dataset, root)
        if ds is None:
            return
        assert ds.format_name == "mmfi" and ds.n_files == len(p["seqs"]) and ds.layout.n_joints == 17
        if sound:
            assert len(ds) == len(p["seqs"]) * p["frames"]
            _exercise(ds)
        else:
            _valid_or_edgepose_error(_exercise, ds)


# ---------------------------------------------------------------------------------------------
# the metric

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.floats(-3, 3)


@st.composite
def pose_pairs(draw):
    n = draw(st.integers(0, 5))
    j = draw(st.integers(1, 18))
    c = draw(st.sampled_from([1, 3])) if _rarely(draw, 0.05) else 2
    shape = (n, j, c)
    pred = np.array(draw(st.lists(FLOATS, min_size=n * j * c, max_size=n * j * c)), dtype=np.float64).reshape(shape)
    gt = np.array(draw(st.lists(FLOATS, min_size=n * j * c, max_size=n * j * c)), dtype=np.float64).reshape(shape)
    if _rarely(draw, 0.05):
        gt = gt[:, :-1]
    dtype = draw(st.sampled_from([np.float64, np.float32, np.float16, np.int32]))
    with np.errstate(over="ignore", invalid="ignore"):
        return pred.astype(dtype) if dtype is not np.int32 else np.nan_to_num(pred).clip(-9, 9).astype(dtype), gt


TORSO = st.sampled_from([(0, 1), (0, 0), (-1, 0)]) | st.tuples(st.integers(-20, 20), st.integers(-20, 20))


@_settings(150)
@given(pair=pose_pairs(), torso=TORSO,
       thresholds=st.lists(st.floats(0, 2), min_size=1, max_size=4, unique=True))
def test_metric_any_input(pair, torso, thresholds):
    pred, gt = pair
    scores = _valid_or_edgepose_error(pck, pred, gt, tuple(thresholds), torso)
    err = _valid_or_edgepose_error(mpjpe, pred, gt)
    meter = PoseMeter(torso=torso, thresholds=tuple(thresholds), subsets={"some": (0,)})
    _valid_or_edgepose_error(meter.update, pred, gt)
    summary = meter.compute()
    # [N, J, 2] poses of one shape with torso joints among them are always scored (NaN/inf values included)
    scorable = pred.shape == gt.shape and pred.shape[-1] == 2 and all(-pred.shape[1] <= i < pred.shape[1] for i in torso)
    event(f"scorable: {scorable}")
    assert (scores is not None) == scorable and (err is not None) == (pred.shape == gt.shape and pred.shape[-1] == 2)
    if scores is None:
        return
    assert err is not None and (np.isnan(err) or err >= 0)
    values = [scores[float(t)] for t in sorted(thresholds)]
    if len(pred) == 0:
        assert all(np.isnan(values))
        return
    assert all(0.0 <= v <= 1.0 for v in values)
    assert values == sorted(values)  # more tolerance never loses a joint
    # a joint counts only when its prediction, its label and its sample's torso are finite
    a, b = torso
    usable = np.isfinite(pred).all(-1) & np.isfinite(gt).all(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        usable &= np.isfinite(np.linalg.norm(gt[:, a] - gt[:, b], axis=-1))[:, None]
    assert values[-1] <= usable.mean() + 1e-12
    assert summary["n"] == len(pred)
    assert summary["pck"] == pytest.approx(scores, nan_ok=True)


@_settings(40)
@given(n=st.integers(1, 40), cuts=st.lists(st.integers(0, 40), max_size=5), seed=st.integers(0, 2**16),
       nan_frac=st.floats(0, 0.3))
def test_meter_equals_one_shot_metric_for_any_batching(n, cuts, seed, nan_frac):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0, 1, (n, 15, 2))
    pred = gt + rng.normal(0, 0.05, gt.shape)
    pred[rng.uniform(size=(n, 15)) < nan_frac] = np.nan
    gt[rng.uniform(size=n) < nan_frac, 2] = np.inf  # a label that breaks the torso normaliser
    meter = PoseMeter()
    bounds = sorted({0, n, *[c % (n + 1) for c in cuts]})
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        meter.update(pred[lo:hi], gt[lo:hi])
    out = meter.compute()
    assert out["n"] == n and out["pck"] == pytest.approx(pck(pred, gt))
    assert out["mpjpe"] == pytest.approx(mpjpe(pred, gt))


@_settings(40)
@given(n=st.integers(1, 6), seed=st.integers(0, 2**16), err=st.floats(0, 0.02))
def test_zero_torso_uses_the_floor(n, seed, err):
    """A degenerate torso (shoulder on hip) normalises by 0.01, so PCK@t is ``err/0.01 ≤ t``."""
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0, 1, (n, 15, 2))
    gt[:, 12] = gt[:, 2]
    pred = gt.copy()
    pred[..., 0] += err
    got = pck(pred, gt, thresholds=(0.5, 1.0, 2.0))
    for t in (0.5, 1.0, 2.0):
        ratio = np.linalg.norm(pred - gt, axis=-1) / MIN_TORSO
        assert got[t] == pytest.approx(float(np.mean(ratio <= t)))


@pytest.mark.parametrize("victim", ["csi_windows.npy", "window_info.npz", "file_info.npz", "all_keypoints.npy"])
def test_one_file_dataset_and_zero_size_files(tmp_path, victim):
    """A one-file dataset opens; each of its files emptied gives a one-line error naming it."""
    p = {"per_file": [3], "channels": 4, "packets": 2, "dtype": "<f4", "poison": [], "labels": "npy",
         "label_shape_ok": True, "csv_columns": 51, "csv_token": "1", "frames_ok": True, "victim": None,
         "how": None, "seed": 0}
    _write_wiflow(tmp_path, p)
    ds = open_dataset(tmp_path)
    assert ds.n_files == 1 and ds.split() == {"train": [], "val": [], "test": [0]}
    _exercise(ds)
    (tmp_path / victim).write_bytes(b"")
    with pytest.raises(EdgeposeError) as err:
        open_dataset(tmp_path)
    assert err.value.path == tmp_path / victim

