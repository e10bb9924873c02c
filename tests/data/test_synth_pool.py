"""Recordings simulated in worker processes give the same dataset, byte for byte, as one process."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from edgepose.data.synth import default_config, synthesize
from edgepose.data.synth.pool import MAX_WORKERS, MIN_RECORDINGS_FOR_WORKERS, default_workers, simulate_recordings
from edgepose.data.synth.recording import make_room


def _digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``: synth_meta.json without its wall time, a ``.mat`` file
    by its arrays (its header holds the time it was written)."""
    from scipy.io import loadmat

    out = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        if p.suffix == ".mat" and data:
            m = loadmat(p)
            data = b"".join(k.encode() + m[k].tobytes() for k in sorted(m) if not k.startswith("__"))
        elif p.name == "synth_meta.json":
            meta = json.loads(data)
            meta.pop("seconds")
            data = json.dumps(meta, sort_keys=True).encode()
        out[str(p.relative_to(folder))] = hashlib.sha256(data).hexdigest()
    return out


@pytest.mark.parametrize("layout, cfg", [
    # 2 × 3 × 2 = 12 recordings of 1.3 s: windows at uneven strides (training files every 7 packets,
    # the others every 14), one corrupt file per split
    ("wiflow", replace(default_config("wiflow"), subjects=2, activities=("walking", "waving", "kicking"), takes=2,
                       duration_s=1.3, stride=14, train_stride=7)),
    # 3 × 3 = 9 sequences (MM-Fi holds one take each), 37 frames
    ("mmfi", replace(default_config("mmfi"), subjects=3, activities=("walking", "squatting", "turning"),
                     duration_s=3.7)),
])
def test_workers_write_the_same_bytes_as_one_process(tmp_path: Path, layout: str, cfg) -> None:
    one = synthesize(tmp_path / "one", cfg, layout=layout, workers=1)
    three = synthesize(tmp_path / "three", cfg, layout=layout, workers=3)
    assert one["files"] == three["files"] == len(cfg.recordings())
    a, b = _digests(tmp_path / "one"), _digests(tmp_path / "three")
    assert len(a) >= 4 and a == b


def test_results_come_back_in_recording_order(tmp_path: Path) -> None:
    cfg = replace(default_config("wiflow"), subjects=3, activities=("walking", "jumping"), takes=2, duration_s=0.5)
    recs = cfg.recordings()[::-1]  # any order the writer asks for is the order it gets
    room = make_room(cfg)
    seq = list(simulate_recordings(cfg, room, recs, _uneven, workers=1))
    par = list(simulate_recordings(cfg, room, recs, _uneven, workers=3))
    assert len(seq) == len(par) == len(recs)
    for (j1, c1, d1), (j2, c2, d2) in zip(seq, par):
        assert (j1 == j2).all() and (c1 == c2).all() and d1 == d2
    # different recordings really are different (the comparison above could not pass by accident)
    assert not (seq[0][0] == seq[-1][0]).all()


def _first_joint(joints, room, subject, rng):
    return joints[:, 0].copy(), {"draw": float(rng.uniform())}


def _uneven(joints, room, subject, rng):
    """A channel whose recordings take 0–60 ms each (drawn from the recording's own stream), so
    workers finish them out of order."""
    import time

    time.sleep(float(rng.uniform(0, 0.06)))
    return _first_joint(joints, room, subject, rng)


def test_default_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing
    import os

    monkeypatch.delenv("EDGEPOSE_SYNTH_WORKERS", raising=False)
    assert default_workers(MIN_RECORDINGS_FOR_WORKERS - 1) == 1
    if "fork" in multiprocessing.get_all_start_methods():
        assert default_workers(420) == min(len(os.sched_getaffinity(0)), MAX_WORKERS)
    # where workers would have to be spawned (re-running the caller's __main__), none by default
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    assert default_workers(420) == 1
    monkeypatch.undo()
    monkeypatch.setenv("EDGEPOSE_SYNTH_WORKERS", "3")
    assert default_workers(1) == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("EDGEPOSE_SYNTH_WORKERS", bad)
        with pytest.raises(ValueError, match="EDGEPOSE_SYNTH_WORKERS"):
            default_workers(420)
    with pytest.raises(ValueError, match="workers"):
        next(simulate_recordings(default_config("wiflow"), None, [(0, 0, 0)], _first_joint, workers=0))


def test_a_writer_that_stops_early_leaves_no_worker_running(tmp_path: Path) -> None:
    import multiprocessing

    cfg = replace(default_config("wiflow"), subjects=4, activities=("walking", "waving"), takes=2, duration_s=0.5)
    gen = simulate_recordings(cfg, make_room(cfg), cfg.recordings(), _uneven, workers=2)
    next(gen)
    gen.close()  # what happens when the writer raises: the pool is shut down, pending work dropped
    assert multiprocessing.active_children() == []
