"""Procedural 15-joint (BODY_25 0–14) skeletons: subjects, activities and their 3-D motion.

Angles follow one convention: a limb's *elevation* is measured from straight down (0 = hanging,
π = overhead); *azimuth* turns it from the facing direction (0) towards the body side (π/2).
Feet stay on the floor (the pelvis height is solved from the legs) except while jumping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACTIVITIES = ("walking", "raising_hands", "squatting", "kicking", "waving", "turning", "jumping")

#: Segment lengths as fractions of height (public anthropometric ratios).
PROPORTIONS = {
    "head": 0.130, "shoulder_width": 0.259, "torso": 0.288, "hip_width": 0.191,
    "upper_leg": 0.245, "lower_leg": 0.246, "upper_arm": 0.188, "lower_arm": 0.152,
}


@dataclass(frozen=True)
class Subject:
    """One person: height (m), per-segment length factors and radar reflectivity scale."""

    height: float
    segments: dict
    reflectivity: float

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Subject":
        height = rng.uniform(1.55, 1.92)
        segments = {k: v * height * rng.uniform(0.94, 1.06) for k, v in PROPORTIONS.items()}
        return cls(height=height, segments=segments, reflectivity=rng.uniform(0.8, 1.25))


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, scale: float, n: int = 3, fmax: float = 0.6) -> np.ndarray:
    """Band-limited wander: a sum of ``n`` slow sinusoids with random frequencies and phases."""
    f = rng.uniform(0.05, fmax, n)
    ph = rng.uniform(0, 2 * np.pi, n)
    a = rng.normal(0, 1, n)
    return scale * (a[:, None] * np.sin(2 * np.pi * f[:, None] * t[None] + ph[:, None])).sum(0) / np.sqrt(n)


def animate(activity: str, subject: Subject, t: np.ndarray, style: np.random.Generator,
            rng: np.random.Generator, stage: tuple[float, float], sway: float = 0.01,
            wander: float = 0.3, cycle_locked: bool = False) -> np.ndarray:
    """3-D joints ``float64 [len(t), 15, 3]`` (metres, z up) of ``subject`` doing ``activity``.

    ``style`` draws how this subject performs this activity (amplitude, facing, which arm
    waves, the walking route): a person repeats an activity the same way, so takes revisit the
    same poses. ``rng`` draws what changes from take to take: tempo, phase, sway and a slow
    wander of every angle. ``stage`` is the floor mark the recording stays on; ``sway`` (metres)
    and ``wander`` scale the take's slow drift of position and of every angle. With
    ``cycle_locked`` the tempo is the subject's (drawn from ``style``) and the walking route and
    the turning heading advance with the limbs' cycle, so every take of an activity runs along
    the same trajectory of poses from its own starting point (the take draws only where it starts).
    """
    if activity not in ACTIVITIES:
        raise ValueError(f"unknown activity {activity!r}; known: {ACTIVITIES}")
    n = len(t)
    zeros = np.zeros(n)
    amp = style.uniform(0.8, 1.15)
    yaw0 = -np.pi / 2 + style.uniform(-0.15, 0.15)  # facing the camera (which looks along +y)
    az = style.uniform(0.6, 1.5)
    arm_choice = int(style.uniform() < 0.5)
    alternate = style.uniform() < 0.5
    course = style.uniform(-0.25, 0.25)
    length = style.uniform(1.6, 2.4)
    spin = style.choice([-1, 1]) * style.uniform(0.9, 1.5)
    tempo = rng.uniform(0.9, 1.1)
    phase = rng.uniform(0, 2 * np.pi)
    if cycle_locked:
        tempo = style.uniform(0.9, 1.1)
    x = stage[0] + _smooth_noise(rng, t, sway)
    y = stage[1] + _smooth_noise(rng, t, sway)
    yaw = yaw0 + _smooth_noise(rng, t, 0.08 * wander)
    lean = 0.05 + _smooth_noise(rng, t, 0.03 * wander)
    jump = zeros.copy()
    # limb angles: [right, left]
    arm_e = np.stack([0.12 + _smooth_noise(rng, t, 0.06 * wander), 0.12 + _smooth_noise(rng, t, 0.06 * wander)])
    arm_a = np.full((2, n), 0.35)
    elbow = np.stack([0.25 + _smooth_noise(rng, t, 0.08 * wander), 0.25 + _smooth_noise(rng, t, 0.08 * wander)])
    hip = np.stack([_smooth_noise(rng, t, 0.03 * wander), _smooth_noise(rng, t, 0.03 * wander)])
    knee = np.stack([0.05 + np.abs(_smooth_noise(rng, t, 0.04 * wander)), 0.05 + np.abs(_smooth_noise(rng, t, 0.04 * wander))])
    w = 2 * np.pi * t

    if activity == "walking":
        f = 0.9 * tempo
        speed = 2 * f * 0.55 * subject.height / 1.75
        period = 2 * length / speed
        s = (t / period + phase / (2 * np.pi * (f * period if cycle_locked else 1.0))) % 1.0
        along = length * (np.minimum(s, 1 - s) * 2 - 0.5)  # triangle wave: back and forth
        # walks across the camera's view, roughly along x
        heading = course + np.where(s < 0.5, 0.0, np.pi)
        x = x + along * np.cos(course)
        y = y + along * np.sin(course)
        yaw = heading + _smooth_noise(rng, t, 0.05 * wander)
        g = np.sin(w * f + phase)
        hip = np.stack([0.45 * amp * g, -0.45 * amp * g])
        knee = np.stack([0.1 + 0.7 * amp * np.clip(-np.cos(w * f + phase), 0, None),
                         0.1 + 0.7 * amp * np.clip(np.cos(w * f + phase), 0, None)])
        arm_e = np.stack([0.1 + 0.45 * amp * -g, 0.1 + 0.45 * amp * g])
        arm_a = np.stack([0.15 - 0.15 * np.sign(-g), 0.15 - 0.15 * np.sign(g)])  # behind the body on back-swing
        elbow = np.stack([0.35 + 0.2 * np.clip(-g, 0, None), 0.35 + 0.2 * np.clip(g, 0, None)])
    elif activity == "raising_hands":
        f = 0.35 * tempo
        up = 0.5 - 0.5 * np.cos(w * f + phase)
        arm_e = np.stack([0.15 + 2.8 * amp * up, 0.15 + 2.8 * amp * up])
        arm_a = np.full((2, n), az)
        elbow = np.stack([0.15 + 0.3 * (1 - up), 0.15 + 0.3 * (1 - up)])
    elif activity == "squatting":
        f = 0.3 * tempo
        down = 0.5 - 0.5 * np.cos(w * f + phase)
        hip = np.stack([1.5 * amp * down, 1.5 * amp * down])
        knee = np.stack([2.2 * amp * down, 2.2 * amp * down]) + 0.05
        lean = 0.05 + 0.55 * amp * down
        arm_e = np.stack([0.15 + 1.4 * down, 0.15 + 1.4 * down])
        arm_a = np.full((2, n), 0.1)
    elif activity == "kicking":
        f = 0.45 * tempo
        cyc = w * f + phase
        kick = np.clip(np.sin(cyc), 0, None) ** 2
        side = (np.floor(cyc / (2 * np.pi)) % 2).astype(int) if alternate else np.zeros(n, int)
        hip = np.zeros((2, n))
        knee = np.full((2, n), 0.1)
        hip[side, np.arange(n)] = 1.3 * amp * kick
        knee[side, np.arange(n)] = 0.1 + 1.2 * np.clip(np.sin(cyc - 0.9), 0, None) * amp
        arm_e = np.stack([0.35 + 0.3 * kick, 0.35 + 0.3 * kick])
        arm_a = np.full((2, n), 1.0)
        lean = 0.05 - 0.2 * kick
    elif activity == "waving":
        f = 1.6 * tempo
        arm = arm_choice  # which hand waves
        drift = w * 0.2 + (phase * 0.2 / f if cycle_locked else 0.0)  # the raised arm's slow drift
        arm_e[arm] = 2.5 + 0.15 * np.sin(drift)
        arm_a[arm] = 1.3
        elbow[arm] = 0.8 + 0.55 * amp * np.sin(w * f + phase)
    elif activity == "turning":
        omega = spin * tempo
        start = phase / (2 * np.pi * 1.2 * tempo) if cycle_locked else 0.0  # where the leg cycle starts
        yaw = yaw0 + omega * (t + start) + _smooth_noise(rng, t, 0.1 * wander)
        g = np.sin(w * 1.2 * tempo + phase)
        hip = np.stack([0.12 * g, -0.12 * g])
        knee = np.stack([0.1 + 0.25 * np.clip(g, 0, None), 0.1 + 0.25 * np.clip(-g, 0, None)])
        arm_e = np.stack([0.3 + 0.1 * g, 0.3 - 0.1 * g])
    elif activity == "jumping":
        f = 0.7 * tempo
        cyc = (w * f + phase) % (2 * np.pi)
        air = np.clip(np.sin(cyc), 0, None)
        crouch = np.clip(-np.sin(cyc), 0, None)
        jump = 0.22 * amp * air
        hip = np.stack([0.7 * crouch + 0.1 * air] * 2)
        knee = np.stack([1.1 * crouch + 0.15 * air] * 2)
        lean = 0.05 + 0.3 * crouch
        arm_e = np.stack([0.3 + 2.2 * air + 0.5 * crouch] * 2)
        arm_a = np.full((2, n), 0.4)
    return _pose(subject, x, y, yaw, lean, jump, arm_e, arm_a, elbow, hip, knee)


def _pose(subject, x, y, yaw, lean, jump, arm_e, arm_a, elbow, hip, knee) -> np.ndarray:
    s = subject.segments
    n = len(x)
    up = np.array([0.0, 0.0, 1.0])
    fwd = np.stack([np.cos(yaw), np.sin(yaw), np.zeros(n)], -1)
    right = np.stack([np.sin(yaw), -np.cos(yaw), np.zeros(n)], -1)

    def sag(elev):  # direction in the sagittal plane at elevation `elev` from straight down
        return np.sin(elev)[:, None] * fwd - np.cos(elev)[:, None] * up

    thigh = [sag(hip[i]) for i in range(2)]
    shin = [sag(hip[i] - knee[i]) for i in range(2)]
    rel_ankle_z = np.stack([s["upper_leg"] * thigh[i][:, 2] + s["lower_leg"] * shin[i][:, 2] for i in range(2)])
    ankle_height = 0.04 * subject.height
    pelvis_z = ankle_height + jump - rel_ankle_z.min(0)
    mid_hip = np.stack([x, y, pelvis_z], -1)
    spine = np.cos(lean)[:, None] * up + np.sin(lean)[:, None] * fwd
    neck = mid_hip + s["torso"] * spine
    nose = neck + s["head"] * (0.7 * spine + 0.45 * fwd)

    joints = np.zeros((n, 15, 3))
    joints[:, 0], joints[:, 1], joints[:, 8] = nose, neck, mid_hip
    for i, (sh, el, wr, hp, kn, an) in enumerate(((2, 3, 4, 9, 10, 11), (5, 6, 7, 12, 13, 14))):
        side = right if i == 0 else -right
        shoulder = neck + 0.5 * s["shoulder_width"] * side - 0.03 * subject.height * spine
        horiz_u = np.cos(arm_a[i])[:, None] * fwd + np.sin(arm_a[i])[:, None] * side
        upper = np.sin(arm_e[i])[:, None] * horiz_u - np.cos(arm_e[i])[:, None] * up
        fore_e = arm_e[i] + elbow[i]
        fore = np.sin(fore_e)[:, None] * horiz_u - np.cos(fore_e)[:, None] * up
        elbow_p = shoulder + s["upper_arm"] * upper
        joints[:, sh], joints[:, el], joints[:, wr] = shoulder, elbow_p, elbow_p + s["lower_arm"] * fore
        hip_p = mid_hip + 0.5 * s["hip_width"] * side
        knee_p = hip_p + s["upper_leg"] * thigh[i]
        joints[:, hp], joints[:, kn], joints[:, an] = hip_p, knee_p, knee_p + s["lower_leg"] * shin[i]
    return joints
