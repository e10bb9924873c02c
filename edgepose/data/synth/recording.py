"""What every synthetic layout shares: the config, one recording's motion, and which files get damaged.

Each recording (file) is one (subject, activity, take). Randomness comes from independent
streams keyed by the seed and the recording's identity, so any recording can be regenerated on
its own: the room from ``(seed, 0)``, a subject from ``(seed, 1, s)``, the subject's style of
an activity from ``(seed, 2, s, a)``, the take's motion from ``(seed, 5, s, a, k)`` and its
noise from ``(seed, 3, s, a, k)``; the corrupt windows draw from ``(seed, 4)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import numpy as np

from edgepose.data.split import split_files
from edgepose.data.synth.motion import ACTIVITIES, Subject, animate
from edgepose.data.synth.scene import Room
from edgepose.data.synth.versions import FLOOR_MARKS, GENERATOR_VERSION, physics, room_for


@dataclass(frozen=True)
class SynthConfig:
    """Size and sampling of a synthetic dataset; the field defaults are the version-2 WiFlow
    default but for ``train_stride`` (:data:`V2_DEFAULT` sets it), so a config recorded before
    that field existed regenerates its own data.

    ``window`` packets make one window (one MM-Fi frame); a window starts every ``stride``
    packets. ``train_stride`` (WiFlow layout only; None: ``stride``) cuts the files of the
    reference split's training set more densely, a window every ``train_stride`` packets, so
    the training windows sample fast movement finely while validation and test keep the
    ``stride`` grid (their windows are the same as with ``train_stride=None``); it must divide
    ``stride``. ``corrupt_windows_per_file`` windows are damaged in one file of each split.
    ``generator_version`` picks the physics and motion (:mod:`.versions`); version 1's default
    size is :data:`V1_DEFAULT`.
    """

    seed: int = 0
    subjects: int = 15
    activities: tuple[str, ...] = ACTIVITIES
    takes: int = 4
    duration_s: float = 4.0
    packet_rate_hz: float = 100.0
    window: int = 20
    stride: int = 20
    train_stride: int | None = None
    corrupt_windows_per_file: int = 6
    generator_version: int = GENERATOR_VERSION

    def recordings(self) -> list[tuple[int, int, int]]:
        """(subject, activity index, take) of every file, in file order."""
        return [(s, a, k) for s in range(self.subjects) for a in range(len(self.activities)) for k in range(self.takes)]

    @property
    def n_packets(self) -> int:
        """Packets per recording."""
        return int(round(self.duration_s * self.packet_rate_hz))

    def window_starts(self, step: int | None = None) -> np.ndarray:
        """First packet of every window of a recording cut every ``step`` packets (None:
        ``stride``; a training file's is ``train_stride``, see :meth:`file_strides`); raises
        ``ValueError`` when there is none or ``train_stride`` does not divide ``stride``."""
        if self.train_stride is not None and (self.train_stride < 1 or self.stride % self.train_stride):
            raise ValueError(f"train_stride {self.train_stride} must be a positive divisor of stride {self.stride}, "
                             "so that every evaluation-grid window is also a training-grid window "
                             "(train_stride=None cuts every file on the stride grid)")
        starts = np.arange(0, self.n_packets - self.window + 1, step or self.stride)
        if len(starts) < 1:
            raise ValueError("recordings are shorter than one window")
        return starts

    def file_strides(self, n_files: int) -> list[int]:
        """The window stride of each of ``n_files`` files in file order: ``train_stride`` for the
        files the reference split (:func:`~edgepose.data.split.split_files`) puts in train,
        ``stride`` for the rest."""
        train = set(split_files(n_files)[0]) if self.train_stride is not None else set()
        return [self.train_stride if f in train else self.stride for f in range(n_files)]


#: The version-2 embedded default (WiFlow layout): 15 subjects × 7 activities × 4 takes of 4 s,
#: training files cut every 5 packets, validation and test every 20 (420 recordings).
V2_DEFAULT = SynthConfig(train_stride=5)

#: The version-1 embedded default: 4 subjects × 7 activities × 3 takes of 8 s, a window every
#: 8 packets (84 recordings, 8,232 windows).
V1_DEFAULT = SynthConfig(subjects=4, takes=3, duration_s=8.0, stride=8, generator_version=1)


def make_room(cfg: SynthConfig) -> Room:
    """The room every recording of ``cfg`` shares (its seed and generator version)."""
    return room_for(cfg.seed, cfg.generator_version)


def simulate_motion(cfg: SynthConfig, room: Room, s: int, a: int, k: int
                    ) -> tuple[np.ndarray, Subject, np.random.Generator]:
    """3-D joints ``[packets, 15, 3]`` of recording ``(s, a, k)``, its subject and its noise stream."""
    phys = physics(cfg.generator_version)
    subject = Subject.sample(np.random.default_rng([cfg.seed, 1, s]))
    style_rng = np.random.default_rng([cfg.seed, 2, s, a])
    motion_rng = np.random.default_rng([cfg.seed, 5, s, a, k])
    noise_rng = np.random.default_rng([cfg.seed, 3, s, a, k])
    drawn = int(motion_rng.integers(len(phys.marks)))  # drawn in every version: the take's motion follows it
    mark = phys.marks[drawn if phys.marks_by == "take" else (s + a) % len(phys.marks)]
    stage = (room.stage[0] + mark[0], room.stage[1] + mark[1])
    t = np.arange(cfg.n_packets) / cfg.packet_rate_hz
    joints = animate(cfg.activities[a], subject, t, style_rng, motion_rng, stage, phys.sway, phys.wander,
                     phys.cycle_locked)
    return joints, subject, noise_rng


def mark_index(cfg: SynthConfig, s: int, a: int, k: int) -> int:
    """Which floor mark (an index into the version's marks) recording ``(s, a, k)`` is performed on,
    as :func:`simulate_motion` chooses it: the lab protocol's ``(s + a) mod marks`` (v2, ``a`` the
    index into ``cfg.activities``) or the first draw of the take's motion stream (v1)."""
    phys = physics(cfg.generator_version)
    if phys.marks_by == "protocol":
        return (s + a) % len(phys.marks)
    return int(np.random.default_rng([cfg.seed, 5, s, a, k]).integers(len(phys.marks)))


def corrupt_files(n_files: int, cfg: SynthConfig) -> list[int]:
    """Indices (in the reader's file order) of the files that get corrupt windows: the first file
    of each split of the reference split, so every code path sees some; none when the config asks
    for no corrupt windows."""
    if not cfg.corrupt_windows_per_file:
        return []
    return sorted({lst[0] for lst in split_files(n_files) if lst})


def generation_meta(cfg: "SynthConfig", layout: str, generator_version: int, files: int) -> dict:
    """The head of ``synth_meta.json`` that every layout writes: generator, versions, config, file count."""
    from edgepose.version import __version__

    return {"generator": "edgepose.data.synth", "generator_version": generator_version, "edgepose_version": __version__,
            "layout": layout, "config": {**asdict(cfg), "activities": list(cfg.activities), "layout": layout},
            "files": files}
