"""Write a synthetic dataset in the MM-Fi WiFi-CSI layout (what :mod:`edgepose.data.mmfi` reads).

Tree::

    E01/S01/A01/wifi-csi/frame001.mat … frameNNN.mat   CSIamp, CSIphase float64 (3, 114, window)
    E01/S01/A01/ground_truth.npy                         (frames, 17, 3) float64, metres
    synth_meta.json

One sequence per (subject, action), as in MM-Fi: subject ``s`` (0-based) is ``S{s+1:02d}`` in
environment ``E{s//10+1:02d}`` (ten subjects per environment, MM-Fi's rule); action codes are
fixed per activity (``A01`` walking … ``A07`` jumping, :data:`ACTION_CODES`), whatever subset is
generated. The radio is the MM-Fi rig (:data:`~edgepose.data.synth.channel.ATHEROS_HT40`: one
transmit antenna, three receive antennas, 114 HT40 tones, 10-bit I/Q) in the same room, with
the same subjects, motions and impairments as the WiFlow layout. ``CSIamp`` is the amplitude in
the card's I/Q units, ``CSIphase`` the raw phase in radians.

Labels are Human3.6M-17 joints derived from the 15-joint skeleton (:func:`h36m_from_body25`) in
the camera's frame: x to the right, y down, z along the viewing direction, in metres — so the
``(x, y)`` the reader keeps is the frontal 2-D pose. A frame's label is the pose at its last
packet.

Damage, in one sequence of each split (the reference split over the reader's sequence order),
when the config asks for corrupt windows: ``corrupt_windows_per_file`` frames with a whole
packet of NaN or inf (no finite value to repair from, so the reader marks the frame corrupt);
two frames with a few scattered inf/NaN values that the MM-Fi cleaning repairs; and one
zero-byte frame file, as in the public archive, which the reader drops with its label.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from edgepose.io import atomic_dir, write_json
from edgepose.data.synth.channel import ATHEROS_HT40, Impairments, received_csi
from edgepose.data.synth.motion import ACTIVITIES
from edgepose.data.synth.pool import simulate_recordings
from edgepose.data.synth.recording import generation_meta, SynthConfig, corrupt_files, make_room
from edgepose.data.synth.versions import physics
from edgepose.data.synth.scene import Camera

#: MM-Fi action code of each synthetic activity.
ACTION_CODES = {name: f"A{i + 1:02d}" for i, name in enumerate(ACTIVITIES)}
#: MM-Fi puts ten subjects in each environment (S01–S10 → E01, S11–S20 → E02, …).
SUBJECTS_PER_ENVIRONMENT = 10
REPAIRABLE_FRAMES_PER_FILE = 2
ZERO_BYTE_FRAMES_PER_FILE = 1
CHANNEL_LAYOUT = "CSIamp/CSIphase (rx antenna, subcarrier, packet) = (3, 114, window)"
LABEL_UNITS = "metres, camera frame (x right, y down, z depth); Human3.6M-17"


def sequence_id(subject: int, activity: str) -> str:
    """``"E01/S01/A01"`` for 0-based ``subject`` doing ``activity``."""
    env = subject // SUBJECTS_PER_ENVIRONMENT + 1
    return f"E{env:02d}/S{subject + 1:02d}/{ACTION_CODES[activity]}"


def h36m_from_body25(joints: np.ndarray) -> np.ndarray:
    """Human3.6M-17 joints ``[..., 17, 3]`` from BODY_25 joints 0–14 ``[..., 15, 3]`` (z up).

    Hips, knees, ankles, shoulders, elbows and wrists map one to one; pelvis is the mid-hip,
    thorax the neck base, spine halfway between them, the H3.6M neck halfway from the neck base
    to the nose, and the head top half a neck-to-nose length above the nose along the spine.
    """
    j = np.asarray(joints, dtype=np.float64)
    pelvis, neck, nose = j[..., 8, :], j[..., 1, :], j[..., 0, :]
    up = neck - pelvis
    up = up / np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-9)
    head = nose + 0.5 * np.linalg.norm(nose - neck, axis=-1, keepdims=True) * up
    order = [pelvis, j[..., 9, :], j[..., 10, :], j[..., 11, :], j[..., 12, :], j[..., 13, :], j[..., 14, :],
             0.5 * (pelvis + neck), neck, 0.5 * (neck + nose), head,
             j[..., 5, :], j[..., 6, :], j[..., 7, :], j[..., 2, :], j[..., 3, :], j[..., 4, :]]
    return np.stack(order, axis=-2)


def camera_frame(points: np.ndarray, camera: Camera) -> np.ndarray:
    """World points (z up; the camera looks along +y) → camera frame: x right, y down, z depth."""
    rel = np.asarray(points, dtype=np.float64) - np.asarray(camera.position)
    return np.stack([rel[..., 0], -rel[..., 2], rel[..., 1]], axis=-1)


def write_mmfi(out: str | Path, cfg: SynthConfig, overwrite: bool = False,
               progress: Callable[[int, int], None] | None = None, workers: int | None = None) -> dict:
    """Generate ``cfg`` into ``out`` (atomically) in the MM-Fi layout and return its metadata.

    ``workers``: processes that simulate the recordings (None:
    :func:`.pool.default_workers`); the data written does not depend on it.

    Raises ``ValueError`` when ``cfg.takes`` is not 1 (MM-Fi holds one sequence per subject
    and action), ``cfg.train_stride`` is set (frames are back to back in every file) or an
    activity is unknown.
    """
    from scipy.io import savemat

    if cfg.takes != 1:
        raise ValueError("the MM-Fi layout holds one sequence per subject and action: "
                         f"takes must be 1, not {cfg.takes}")
    if cfg.train_stride is not None:
        raise ValueError("the MM-Fi layout writes frames back to back: train_stride must be None "
                         f"(every file on the same grid), not {cfg.train_stride}")
    unknown = [a for a in cfg.activities if a not in ACTION_CODES]
    if unknown:
        raise ValueError(f"unknown activities {unknown}; choose from {', '.join(ACTIVITIES)}")
    t0 = time.perf_counter()
    room = make_room(cfg)
    ripple = _ripple(np.random.default_rng([cfg.seed, 6]), ATHEROS_HT40.n_links, len(ATHEROS_HT40.tones))
    camera = Camera()
    # the reader's file order is the sorted sequence path; damage follows the split over that order
    recs = sorted(cfg.recordings(), key=lambda r: tuple(sequence_id(r[0], cfg.activities[r[1]]).split("/")))
    ids = [sequence_id(s, cfg.activities[a]) for s, a, _ in recs]
    if len(set(ids)) != len(ids):
        raise ValueError("activities repeat: each (subject, action) sequence can be written once")
    starts = cfg.window_starts()
    per_file = len(starts)
    damaged = corrupt_files(len(recs), cfg)
    bad_rng = np.random.default_rng([cfg.seed, 4])
    ratios, zero_byte, corrupt, repaired = [], [], [], []
    with atomic_dir(out, overwrite=overwrite) as tmp:
        channel = partial(_atheros_csi, ripple=ripple,
                          agc_compensated=physics(cfg.generator_version).agc_compensated)
        for f, (joints, h, diag) in enumerate(simulate_recordings(cfg, room, recs, channel, workers)):
            ratios.append(diag["dynamic_to_static_db"])
            seq = tmp / ids[f]
            (seq / "wifi-csi").mkdir(parents=True)
            last = starts + cfg.window - 1
            gt = camera_frame(h36m_from_body25(joints[last]), camera)
            np.save(seq / "ground_truth.npy", gt)
            frames = h[np.arange(cfg.window)[None, :] + starts[:, None]].transpose(0, 2, 3, 1)  # [F, 3, 114, T]
            amp, phase = np.abs(frames), np.angle(frames)
            empty: set[int] = set()
            if f in damaged:
                picks = bad_rng.choice(per_file, min(per_file, cfg.corrupt_windows_per_file
                                                     + REPAIRABLE_FRAMES_PER_FILE + ZERO_BYTE_FRAMES_PER_FILE),
                                       replace=False)
                n_bad = min(cfg.corrupt_windows_per_file, len(picks))
                for j, w in enumerate(picks[:n_bad]):
                    packet = bad_rng.integers(cfg.window)
                    amp[w, :, :, packet] = (np.nan, np.inf)[j % 2]  # a packet with no finite value
                    corrupt.append(f"{ids[f]}/frame{w + 1:03d}")
                for w in picks[n_bad : n_bad + REPAIRABLE_FRAMES_PER_FILE]:
                    spots = tuple(bad_rng.integers(n, size=3) for n in amp.shape[1:])
                    amp[(w, *spots)] = (np.inf, np.nan, np.inf)
                    repaired.append(f"{ids[f]}/frame{w + 1:03d}")
                for w in picks[n_bad + REPAIRABLE_FRAMES_PER_FILE :]:
                    empty.add(int(w))
                    zero_byte.append(f"{ids[f]}/frame{w + 1:03d}")
            for w in range(per_file):
                path = seq / "wifi-csi" / f"frame{w + 1:03d}.mat"
                if w in empty:
                    path.write_bytes(b"")
                else:
                    savemat(path, {"CSIamp": amp[w], "CSIphase": phase[w]})
            if progress:
                progress(f + 1, len(recs))
        meta = {
            **generation_meta(cfg, "mmfi", cfg.generator_version, len(recs)),
            "windows": len(recs) * per_file - len(zero_byte),
            "windows_per_file": per_file,
            "radio": ATHEROS_HT40.name,
            "channel_layout": CHANNEL_LAYOUT,
            "label_units": LABEL_UNITS,
            "actions": {ACTION_CODES[a]: a for a in cfg.activities},
            "corrupt_files": [ids[f] for f in damaged],
            "corrupt_frames": corrupt,
            "repaired_frames": repaired,
            "zero_byte_frames": zero_byte,
            "dynamic_to_static_db_median": float(np.median(ratios)),
            "seconds": round(time.perf_counter() - t0, 2),
        }
        write_json(tmp / "synth_meta.json", meta)
    return meta


def _ripple(rng: np.random.Generator, links: int, tones: int) -> np.ndarray:
    """Fixed per-chain amplitude ripple ``[links, tones]``: three slow cosines of 4 % each, as in
    :meth:`~edgepose.data.synth.scene.Room.sample`."""
    grid = np.linspace(0, 1, tones)
    return 1 + sum(
        rng.normal(0, 0.04, (links, 1)) * np.cos(2 * np.pi * (m * grid + rng.uniform(0, 1, (links, 1))))
        for m in (1, 2, 3)
    )


def _atheros_csi(joints: np.ndarray, room, subject, rng: np.random.Generator, ripple: np.ndarray,
                 agc_compensated: bool) -> tuple[np.ndarray, dict]:
    """The Atheros HT40 rig's complex CSI of one recording (a :data:`.pool.Channel`)."""
    return received_csi(joints, room, subject.reflectivity, Impairments.sample(rng), rng, ATHEROS_HT40, ripple,
                        agc_compensated=agc_compensated)
