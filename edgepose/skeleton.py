"""Joint layouts: joint names, bones, the torso pair that normalises PCK, and end effectors.

A layout travels with a dataset so that the metric and the loss never hard-code joint indices.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JointLayout:
    """Names and structure of one keypoint convention.

    Attributes:
        name: short identifier stored in cards.
        joints: joint names in output order.
        bones: index pairs whose lengths the bone loss constrains.
        torso: the index pair whose distance normalises PCK.
        end_effectors: indices of wrists and ankles, reported separately.
    """

    name: str
    joints: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    torso: tuple[int, int]
    end_effectors: tuple[int, ...]

    @property
    def n_joints(self) -> int:
        return len(self.joints)


#: OpenPose BODY_25 joints 0–14 (the WiFlow label layout). The PCK normaliser is the distance
#: from joint 2 (right shoulder) to joint 12 (left hip): a diagonal across the torso.
BODY25_15 = JointLayout(
    name="body25-15",
    joints=(
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
        "left_shoulder", "left_elbow", "left_wrist", "mid_hip",
        "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    ),
    bones=(
        (0, 1), (1, 8), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7),
        (8, 9), (8, 12), (9, 10), (10, 11), (12, 13), (13, 14),
    ),
    torso=(2, 12),
    end_effectors=(4, 7, 11, 14),
)

#: Human3.6M 17-joint order used by MM-Fi (pelvis root). Papers disagree on which side is
#: "left"; the names follow the common Human3.6M convention. The torso pair mirrors the WiFlow
#: diagonal: right shoulder (14) to left hip (4).
H36M_17 = JointLayout(
    name="h36m-17",
    joints=(
        "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
        "spine", "thorax", "neck", "head", "left_shoulder", "left_elbow", "left_wrist",
        "right_shoulder", "right_elbow", "right_wrist",
    ),
    bones=(
        (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
        (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16),
    ),
    torso=(14, 4),
    end_effectors=(3, 6, 13, 16),
)

LAYOUTS = {layout.name: layout for layout in (BODY25_15, H36M_17)}


def get_layout(name: str) -> JointLayout:
    """Look a layout up by name."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise KeyError(f"unknown joint layout {name!r}; known: {sorted(LAYOUTS)}") from None
