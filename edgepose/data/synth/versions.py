"""Generator versions: what a recording's physics and motion depend on, per version.

Version 1 is the first embedded default (84 recordings of 4 subjects; kept so checkpoints whose
cards record it regenerate their data bit for bit). Version 2 is the current default: many more
subjects and takes in shorter recordings, so the reference split holds enough recordings to
measure generalisation to new takes, performed as a lab protocol — each subject on its own floor
mark for an activity, at its own tempo, with little take-to-take drift — so a new take revisits
poses other takes showed (see docs/synthetic-data.md). The room and the channel model are
version 1's; so are the impairments, except that the capture undoes the gain setting the card
reports with each packet, as real capture tools do. Version 2 draws from the same random streams as version 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgepose.data.synth.scene import Room

#: Versions this install can generate; the last one is the default.
GENERATOR_VERSIONS = (1, 2)
GENERATOR_VERSION = GENERATOR_VERSIONS[-1]


@dataclass(frozen=True)
class Physics:
    """What a generator version changes in how recordings are performed.

    ``marks`` are the floor marks (offsets from the room's stage centre, metres); ``sway``
    (metres) and ``wander`` scale a take's slow drift of position and joint angles.
    ``marks_by`` says how a recording's mark is chosen: ``"take"`` draws it at random for every
    take (v1); ``"protocol"`` follows a lab protocol — subject ``s`` performs activity ``a`` on
    mark ``(s + a) mod len(marks)`` in every take, so each subject revisits its spot and every
    (activity, mark) is performed by many subjects. ``cycle_locked``: a subject keeps its own
    tempo for an activity and its route and heading follow the limbs' cycle, so takes differ in
    where along the movement they start, not in which poses the movement visits.
    ``agc_compensated``: the capture undoes the per-packet gain setting the card reports
    (:func:`~edgepose.data.synth.channel.received_csi`).
    """

    marks: tuple[tuple[float, float], ...]
    marks_by: str = "take"
    cycle_locked: bool = False
    agc_compensated: bool = False
    sway: float = 0.01
    wander: float = 0.3


#: Floor marks the subjects perform on. Marked spots are revisited across recordings, as in a
#: real lab protocol; per-recording placement at random continuous positions would let a network
#: memorise recordings instead of poses. Several marks make the subject's place in the image part
#: of the task, so the mean pose is no free win.
FLOOR_MARKS = ((-0.7, -0.4), (0.6, -0.3), (-0.5, 0.5), (0.5, 0.6))

PHYSICS = {
    1: Physics(marks=FLOOR_MARKS),
    2: Physics(marks=FLOOR_MARKS, marks_by="protocol", cycle_locked=True, agc_compensated=True,
                 sway=0.003, wander=0.1),
}


def physics(version: int) -> Physics:
    """The :class:`Physics` of generator ``version``; ``ValueError`` for one this install lacks."""
    if version not in PHYSICS:
        raise ValueError(f"unknown synthetic generator version {version!r}; this install has "
                         f"{', '.join(map(str, GENERATOR_VERSIONS))}")
    return PHYSICS[version]


def room_for(seed: int, version: int) -> Room:
    """The room of ``seed`` under generator ``version``: every version so far shares version 1's
    room (the channel model, the antennas and the impairments did not change)."""
    physics(version)
    return Room.sample(np.random.default_rng([seed, 0]))
