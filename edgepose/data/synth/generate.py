"""Write a synthetic CSI pose dataset in the WiFlow preprocessed layout.

Each recording (file) is one (subject, activity, take). Randomness comes from independent
streams keyed by the seed and the recording's identity, so any recording can be regenerated on
its own: the room from ``(seed, 0)``, a subject from ``(seed, 1, s)``, the subject's style of
an activity from ``(seed, 2, s, a)``, the take's motion from ``(seed, 5, s, a, k)`` and its
noise from ``(seed, 3, s, a, k)``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ... import __version__
from ...io import atomic_dir, write_json
from ..split import split_files
from .channel import Impairments, csi_amplitude
from .motion import ACTIVITIES, Subject, animate
from .scene import CHANNEL_LAYOUT, Camera, Room

GENERATOR_VERSION = 1
#: Floor marks the subjects perform on (offsets from the room's stage centre, metres). Marked
#: spots are revisited across recordings, as in a real lab protocol; per-recording placement at
#: random continuous positions would let a network memorise recordings instead of poses. Several
#: marks make the subject's place in the image part of the task, so the mean pose is no free win.
FLOOR_MARKS = ((-0.7, -0.4), (0.6, -0.3), (-0.5, 0.5), (0.5, 0.6))


@dataclass(frozen=True)
class SynthConfig:
    """Size and sampling of a synthetic dataset; defaults are the embedded default dataset."""

    seed: int = 0
    subjects: int = 4
    activities: tuple[str, ...] = ACTIVITIES
    takes: int = 3
    duration_s: float = 8.0
    packet_rate_hz: float = 100.0
    window: int = 20
    stride: int = 8
    corrupt_windows_per_file: int = 6

    def recordings(self) -> list[tuple[int, int, int]]:
        """(subject, activity index, take) of every file, in file order."""
        return [(s, a, k) for s in range(self.subjects) for a in range(len(self.activities)) for k in range(self.takes)]


def _record(cfg: SynthConfig, room: Room, camera: Camera, s: int, a: int, k: int):
    subject = Subject.sample(np.random.default_rng([cfg.seed, 1, s]))
    style_rng = np.random.default_rng([cfg.seed, 2, s, a])
    motion_rng = np.random.default_rng([cfg.seed, 5, s, a, k])
    noise_rng = np.random.default_rng([cfg.seed, 3, s, a, k])
    mark = FLOOR_MARKS[motion_rng.integers(len(FLOOR_MARKS))]
    stage = (room.stage[0] + mark[0], room.stage[1] + mark[1])
    n = int(round(cfg.duration_s * cfg.packet_rate_hz))
    t = np.arange(n) / cfg.packet_rate_hz
    joints = animate(cfg.activities[a], subject, t, style_rng, motion_rng, stage)
    csi, diag = csi_amplitude(joints, room, subject.reflectivity, Impairments.sample(noise_rng), noise_rng)
    return csi, camera.project(joints).astype(np.float32), diag


def synthesize(out: str | Path, cfg: SynthConfig = SynthConfig(), overwrite: bool = False,
               progress: Callable[[int, int], None] | None = None) -> dict:
    """Generate the dataset into ``out`` (atomically) and return its metadata."""
    t0 = time.perf_counter()
    room = Room.sample(np.random.default_rng([cfg.seed, 0]))
    camera = Camera()
    recs = cfg.recordings()
    n_packets = int(round(cfg.duration_s * cfg.packet_rate_hz))
    starts = np.arange(0, n_packets - cfg.window + 1, cfg.stride)
    per_file = len(starts)
    if per_file < 1:
        raise ValueError("recordings are shorter than one window")
    n = per_file * len(recs)
    # files whose windows get corrupted: one from each split, so every code path sees some
    tr, va, te = split_files(len(recs))
    corrupt_files = sorted({lst[0] for lst in (tr, va, te) if lst}) if cfg.corrupt_windows_per_file else []
    ratios = []
    with atomic_dir(out, overwrite=overwrite) as tmp:
        windows = np.lib.format.open_memmap(tmp / "csi_windows.npy", mode="w+", dtype=np.float32, shape=(n, 540, cfg.window))
        keypoints = np.empty((n_packets * len(recs), 15, 2), dtype=np.float32)
        w2file = np.repeat(np.arange(len(recs)), per_file)
        w2frame = np.empty(n, dtype=np.int64)
        bad_rng = np.random.default_rng([cfg.seed, 4])
        for f, (s, a, k) in enumerate(recs):
            csi, kp2d, diag = _record(cfg, room, camera, s, a, k)
            ratios.append(diag["dynamic_to_static_db"])
            keypoints[f * n_packets : (f + 1) * n_packets] = kp2d
            idx = np.arange(cfg.window)[None, :] + starts[:, None]            # [W, T]
            block = csi[idx].transpose(0, 2, 1)                               # [W, 540, T]
            if f in corrupt_files:
                for j, w in enumerate(bad_rng.choice(per_file, cfg.corrupt_windows_per_file, replace=False)):
                    kind = j % 3
                    c = bad_rng.integers(540, size=4)
                    block[w, c, bad_rng.integers(cfg.window)] = (np.nan, np.inf, 3.4e38)[kind]
            windows[f * per_file : (f + 1) * per_file] = block
            w2frame[f * per_file : (f + 1) * per_file] = f * n_packets + starts + cfg.window - 1
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
            window_ranges=np.stack([np.arange(len(recs)) * per_file, (np.arange(len(recs)) + 1) * per_file], 1),
            keypoints_files=np.array([""] * len(recs)),
        )
        meta = {
            "generator": "edgepose.data.synth",
            "generator_version": GENERATOR_VERSION,
            "edgepose_version": __version__,
            "config": {**asdict(cfg), "activities": list(cfg.activities)},
            "files": len(recs),
            "windows": n,
            "windows_per_file": per_file,
            "channel_layout": CHANNEL_LAYOUT,
            "label_units": "pixel/1000 (1280x720 pinhole camera)",
            "corrupt_files": [str(file_ids[f]) for f in corrupt_files],
            "dynamic_to_static_db_median": float(np.median(ratios)),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        write_json(tmp / "synth_meta.json", meta)
    return meta
