"""Generator versions: what a recording's physics and motion depend on, per version.

Version 1 is the first embedded default (84 recordings of 4 subjects; kept so checkpoints whose
cards record it regenerate their data bit for bit). Version 2 is the current default: many more
subjects and shorter recordings, so the reference split holds enough recordings to measure
generalisation, and a room with the clutter of a furnished lab, so that where the body is and how
it is posed shadows many more static paths (see docs/synthetic-data.md).

A version only adds to what version 1 draws, from streams of its own: the v2 room is the v1 room
of the same seed plus clutter drawn from ``(seed, 7)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from edgepose.data.synth.scene import Room

#: Versions this install can generate; the last one is the default.
GENERATOR_VERSIONS = (1, 2)
GENERATOR_VERSION = GENERATOR_VERSIONS[-1]


@dataclass(frozen=True)
class Physics:
    """What a generator version changes in the room and the motion.

    ``marks`` are the floor marks (offsets from the room's stage centre, metres); ``clutter`` the
    number of extra static scatterers (shelves, lamps, boxes, monitors) beyond the room's six
    furniture pieces, with heights ``clutter_z`` and cross-sections ``clutter_rcs`` (m²);
    ``sway`` (metres) and ``wander`` scale a take's slow drift of position and joint angles.
    ``marks_by`` says how a recording's mark is chosen: ``"take"`` draws it at random for every
    take (v1); ``"protocol"`` follows a lab protocol — subject ``s`` performs activity ``a`` on
    mark ``(s + a) mod len(marks)`` in every take, so each subject revisits its spot and every
    (activity, mark) is performed by many subjects.
    """

    marks: tuple[tuple[float, float], ...]
    marks_by: str = "take"
    clutter: int = 0
    clutter_z: tuple[float, float] = (0.1, 2.5)
    clutter_rcs: tuple[float, float] = (0.05, 0.6)
    sway: float = 0.01
    wander: float = 0.3


#: Floor marks the subjects perform on. Marked spots are revisited across recordings, as in a
#: real lab protocol; per-recording placement at random continuous positions would let a network
#: memorise recordings instead of poses. Several marks make the subject's place in the image part
#: of the task, so the mean pose is no free win.
FLOOR_MARKS = ((-0.7, -0.4), (0.6, -0.3), (-0.5, 0.5), (0.5, 0.6))

PHYSICS = {
    1: Physics(marks=FLOOR_MARKS),
    2: Physics(marks=FLOOR_MARKS, marks_by="protocol", sway=0.003, wander=0.1),
}


def physics(version: int) -> Physics:
    """The :class:`Physics` of generator ``version``; ``ValueError`` for one this install lacks."""
    if version not in PHYSICS:
        raise ValueError(f"unknown synthetic generator version {version!r}; this install has "
                         f"{', '.join(map(str, GENERATOR_VERSIONS))}")
    return PHYSICS[version]


def room_for(seed: int, version: int) -> Room:
    """The room of ``seed`` under generator ``version`` (v1's room plus the version's clutter)."""
    room = Room.sample(np.random.default_rng([seed, 0]))
    phys = physics(version)
    if not phys.clutter:
        return room
    rng = np.random.default_rng([seed, 7])
    n = phys.clutter
    pos = np.column_stack([rng.uniform(0.2, room.size[0] - 0.2, n), rng.uniform(0.2, room.size[1] - 0.2, n),
                           rng.uniform(*phys.clutter_z, n)])
    # keep the clutter out of the performance area (a 1.2 m margin around the stage centre)
    near = np.hypot(pos[:, 0] - room.stage[0], pos[:, 1] - room.stage[1]) < 1.2
    pos[near, :2] = room.stage + (pos[near, :2] - room.stage) / np.maximum(
        np.hypot(*(pos[near, :2] - room.stage).T)[:, None], 1e-6) * 1.2
    rcs = rng.uniform(*phys.clutter_rcs, n)
    return replace(room, furniture=np.vstack([room.furniture, pos]),
                   furniture_rcs=np.concatenate([room.furniture_rcs, rcs]))
