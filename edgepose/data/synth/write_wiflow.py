"""Write a synthetic dataset in the WiFlow preprocessed layout (the embedded default).

Files: ``csi_windows.npy (N, 540, window)`` float32, ``all_keypoints.npy (frames, 15, 2)`` in
pixel/1000, ``window_info.npz``, ``file_info.npz`` and ``synth_meta.json`` — what
:mod:`edgepose.data.wiflow` reads. A window's label is the pose at its last packet.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from edgepose.io import atomic_dir, write_json
from edgepose.data.synth.channel import Impairments, csi_amplitude
from edgepose.data.synth.pool import simulate_recordings
from edgepose.data.synth.recording import generation_meta, SynthConfig, corrupt_files, make_room
from edgepose.data.synth.scene import Room
from edgepose.data.synth.versions import physics
from edgepose.data.synth.scene import CHANNEL_LAYOUT, Camera



def write_wiflow(out: str | Path, cfg: SynthConfig, overwrite: bool = False,
                 progress: Callable[[int, int], None] | None = None, workers: int | None = None) -> dict:
    """Generate ``cfg`` into ``out`` (atomically) in the WiFlow layout and return its metadata.

    ``workers``: processes that simulate the recordings (None:
    :func:`.pool.default_workers`); the data written does not depend on it."""
    t0 = time.perf_counter()
    room = make_room(cfg)
    camera = Camera()
    recs = cfg.recordings()
    n_packets = cfg.n_packets
    base = cfg.window_starts()
    strides = cfg.file_strides(len(recs))
    starts_of = [cfg.window_starts(st) for st in strides]
    counts = np.array([len(st) for st in starts_of])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    n = int(offsets[-1])
    # files whose windows get corrupted: one from each split, so every code path sees some
    damaged = corrupt_files(len(recs), cfg)
    ratios = []
    with atomic_dir(out, overwrite=overwrite) as tmp:
        windows = np.lib.format.open_memmap(tmp / "csi_windows.npy", mode="w+", dtype=np.float32, shape=(n, 540, cfg.window))
        keypoints = np.empty((n_packets * len(recs), 15, 2), dtype=np.float32)
        w2file = np.repeat(np.arange(len(recs)), counts)
        w2frame = np.empty(n, dtype=np.int64)
        bad_rng = np.random.default_rng([cfg.seed, 4])
        channel = partial(_amplitude, agc_compensated=physics(cfg.generator_version).agc_compensated)
        for f, (joints, csi, diag) in enumerate(simulate_recordings(cfg, room, recs, channel, workers)):
            ratios.append(diag["dynamic_to_static_db"])
            keypoints[f * n_packets : (f + 1) * n_packets] = camera.project(joints).astype(np.float32)
            starts = starts_of[f]
            idx = np.arange(cfg.window)[None, :] + starts[:, None]            # [W, T]
            block = csi[idx].transpose(0, 2, 1)                               # [W, 540, T]
            if f in damaged:
                # drawn on the evaluation grid, so a denser training grid damages the same packets
                # and every other file's damage (and the RNG stream) is as with train_stride None
                n_bad = min(len(base), cfg.corrupt_windows_per_file)
                for j, w in enumerate(bad_rng.choice(len(base), n_bad, replace=False)):
                    kind = j % 3
                    c = bad_rng.integers(540, size=4)
                    block[w * (cfg.stride // strides[f]), c, bad_rng.integers(cfg.window)] = (np.nan, np.inf, 3.4e38)[kind]
            windows[offsets[f] : offsets[f + 1]] = block
            w2frame[offsets[f] : offsets[f + 1]] = f * n_packets + starts + cfg.window - 1
            if progress:
                progress(f + 1, len(recs))
        windows.flush()
        del windows
        file_ids = np.array([f"S{s + 1:02d}_{cfg.activities[a]}_T{k + 1}" for s, a, k in recs])
        np.save(tmp / "all_keypoints.npy", keypoints)
        np.savez(tmp / "window_info.npz", window_to_file=w2file, window_to_frame=w2frame)
        np.savez(
            tmp / "file_info.npz",
            file_ids=file_ids,
            window_ranges=np.stack([offsets[:-1], offsets[1:]], 1),
            keypoints_files=np.array([""] * len(recs)),
        )
        meta = {
            **generation_meta(cfg, "wiflow", cfg.generator_version, len(recs)),
            "windows": n,
            "windows_per_file": len(base),
            **({"train_windows_per_file": len(cfg.window_starts(cfg.train_stride))} if cfg.train_stride is not None else {}),
            "channel_layout": CHANNEL_LAYOUT,
            "label_units": "pixel/1000 (1280x720 pinhole camera)",
            "corrupt_files": [str(file_ids[f]) for f in damaged],
            "dynamic_to_static_db_median": float(np.median(ratios)),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        write_json(tmp / "synth_meta.json", meta)
    return meta


def _amplitude(joints: np.ndarray, room: Room, subject, rng: np.random.Generator, agc_compensated: bool
               ) -> tuple[np.ndarray, dict]:
    """The WiFlow rig's amplitude CSI of one recording (a :data:`.pool.Channel`)."""
    return csi_amplitude(joints, room, subject.reflectivity, Impairments.sample(rng), rng,
                         agc_compensated=agc_compensated)
