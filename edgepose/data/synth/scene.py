"""The room: antennas, static multipath, the camera that makes 2-D labels, and body scatterers.

Geometry (metres, z up) of one fixed room — every recording shares it, as every recording of a
real dataset shares its lab. Channels are ordered ``[receiver, tx antenna, rx antenna,
subcarrier]`` = 2 × 3 × 3 × 30 = 540, the ``rx-tx-rxant-subcarrier`` layout (the WiFlow rig); the
MM-Fi rig uses the first transmit antenna and the first receiver's three antennas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

C = 299_792_458.0
CENTER_HZ = 5.32e9                      # 5 GHz channel 64
SUBCARRIER_SPACING_HZ = 312.5e3
#: Intel 5300 HT20 CSI grouping: 30 of the 56 data subcarriers.
INTEL5300_GROUPS = np.array(list(range(-28, -1, 2)) + [-1, 1] + list(range(3, 28, 2)) + [28])
#: Atheros HT40 CSI (the MM-Fi receiver): the 114 tones ±2..±58 (DC and the pilots' gap excluded).
ATHEROS_HT40_TONES = np.array(list(range(-58, -1)) + list(range(2, 59)))
CHANNEL_LAYOUT = "rx-tx-rxant-subcarrier"

#: Body scatterers: (joint a, joint b, fraction from a to b, radar cross-section share (m²),
#: body-part radius (m), shadowing depth). The torso carries most of the reflectivity and
#: shadows a path by up to ~6 dB; cross-sections sum to about 1 m².
BODY_SCATTERERS = (
    (1, 8, 0.15, 0.14, 0.16, 0.45), (1, 8, 0.5, 0.16, 0.15, 0.5), (1, 8, 0.85, 0.14, 0.16, 0.45),
    (2, 5, 0.5, 0.08, 0.12, 0.25), (9, 12, 0.5, 0.08, 0.13, 0.3), (0, 0, 0.0, 0.06, 0.10, 0.3),
    (2, 3, 0.5, 0.035, 0.05, 0.15), (5, 6, 0.5, 0.035, 0.05, 0.15),
    (3, 4, 0.6, 0.02, 0.04, 0.12), (6, 7, 0.6, 0.02, 0.04, 0.12),
    (9, 10, 0.5, 0.06, 0.08, 0.25), (12, 13, 0.5, 0.06, 0.08, 0.25),
    (10, 11, 0.5, 0.035, 0.06, 0.2), (13, 14, 0.5, 0.035, 0.06, 0.2),
)
#: Half-width of the first Fresnel zone mid-path (√(λ·d1·d2/(d1+d2)) ≈ 0.2 m for metre-scale
#: links at 5.3 GHz), taken as one constant: shadowing is a smooth function of how close a body
#: part comes to a path's route.
FRESNEL_HALF_WIDTH = 0.2


@dataclass(frozen=True)
class Camera:
    """Pinhole camera looking along +y; labels come out in OpenPose pixels / 1000."""

    position: tuple[float, float, float] = (3.0, 0.2, 1.3)
    focal_px: float = 600.0
    width_px: int = 1280
    height_px: int = 720

    def project(self, points: np.ndarray) -> np.ndarray:
        """``[..., 3]`` world points → ``[..., 2]`` image points in pixel/1000."""
        rel = points - np.asarray(self.position)
        depth = np.maximum(rel[..., 1], 0.3)
        u = self.width_px / 2 + self.focal_px * rel[..., 0] / depth
        v = self.height_px / 2 - self.focal_px * rel[..., 2] / depth
        return np.stack([u, v], -1) / 1000.0


@dataclass(frozen=True)
class Room:
    """A furnished room with one 3-antenna transmitter and two 3-antenna receivers."""

    size: tuple[float, float, float]
    tx: np.ndarray            # [3, 3] antenna positions
    rx: np.ndarray            # [2, 3, 3] receiver × antenna × xyz
    wall_reflection: np.ndarray  # [6] x0, xW, y0, yD, floor, ceiling
    furniture: np.ndarray     # [F, 3]
    furniture_rcs: np.ndarray  # [F] m²
    ripple: np.ndarray        # [2, 3, 3, K] fixed per-chain amplitude ripple
    stage: tuple[float, float] = (3.0, 3.0)

    @property
    def wavelength(self) -> float:
        return C / CENTER_HZ

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Room":
        size = (6.0, 5.5, 2.8)
        lam = C / CENTER_HZ
        half = lam / 2
        tx0 = np.array([0.6, 0.8, 1.25]) + rng.uniform(-0.05, 0.05, 3)
        tx = tx0 + np.outer(np.arange(3), [half, 0, 0])
        rx_bases = np.array([[5.4, 5.0, 1.05], [0.7, 5.1, 1.45]]) + rng.uniform(-0.05, 0.05, (2, 3))
        rx = rx_bases[:, None, :] + np.arange(3)[None, :, None] * np.array([0, -half, 0])[None, None, :]
        furniture = np.column_stack([rng.uniform(0.3, 5.7, 6), rng.uniform(0.3, 5.2, 6), rng.uniform(0.3, 1.2, 6)])
        k = len(INTEL5300_GROUPS)
        grid = np.linspace(0, 1, k)
        ripple = 1 + sum(
            rng.normal(0, 0.04, (2, 3, 3, 1)) * np.cos(2 * np.pi * (m * grid + rng.uniform(0, 1, (2, 3, 3, 1))))
            for m in (1, 2, 3)
        )
        return cls(size, tx, rx, rng.uniform(0.3, 0.7, 6), furniture, rng.uniform(0.2, 1.0, 6), ripple)

    def links(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-link TX and RX positions, each ``[18, 3]``, in ``[receiver, tx, rx antenna]`` order."""
        tx = np.broadcast_to(self.tx[None, :, None, :], (2, 3, 3, 3)).reshape(18, 3)
        rx = np.broadcast_to(self.rx[:, None, :, :], (2, 3, 3, 3)).reshape(18, 3)
        return tx, rx

    def static_paths(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Line-of-sight, first-order wall/floor/ceiling image and furniture paths of every link.

        Returns amplitudes and lengths ``[18, P]`` and the route of each path as two straight
        segments ``[18, P, 2, 2, 3]`` (segment, start/end, xyz) — the body shadows a path where
        it comes close to its route.
        """
        tx, rx = self.links()
        lam = self.wavelength
        amps, lens, routes = [], [], []
        d = np.linalg.norm(tx - rx, axis=-1)
        mid = 0.5 * (tx + rx)
        amps.append(lam / (4 * np.pi * d)); lens.append(d); routes.append((tx, mid, rx))
        for face, gamma in enumerate(self.wall_reflection):
            axis, at = face // 2, (0.0 if face % 2 == 0 else self.size[face // 2])
            image = tx.copy()
            image[:, axis] = 2 * at - image[:, axis]
            d = np.linalg.norm(image - rx, axis=-1)
            u = (at - rx[:, axis]) / (image[:, axis] - rx[:, axis])   # where image→rx meets the wall
            bounce = rx + u[:, None] * (image - rx)
            amps.append(gamma * lam / (4 * np.pi * d)); lens.append(d); routes.append((tx, bounce, rx))
        for p, rcs in zip(self.furniture, self.furniture_rcs):
            a, b = np.linalg.norm(tx - p, axis=-1), np.linalg.norm(rx - p, axis=-1)
            amps.append(lam * np.sqrt(rcs) / ((4 * np.pi) ** 1.5 * a * b)); lens.append(a + b)
            routes.append((tx, np.broadcast_to(p, tx.shape), rx))
        seg = np.stack([np.stack([np.stack([r[0], r[1]], 1), np.stack([r[1], r[2]], 1)], 1) for r in routes], 1)
        return np.stack(amps, -1), np.stack(lens, -1), seg


def body_points(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scatterer positions ``[T, S, 3]`` along the bones, cross-sections, radii and shadow depths ``[S]``."""
    table = np.array([s[2:] for s in BODY_SCATTERERS])
    a = joints[:, [s[0] for s in BODY_SCATTERERS]]
    b = joints[:, [s[1] for s in BODY_SCATTERERS]]
    return a + table[None, :, 0, None] * (b - a), table[:, 1], table[:, 2], table[:, 3]


def shadowing(points: np.ndarray, radius: np.ndarray, depth: np.ndarray, routes: np.ndarray) -> np.ndarray:
    """Multiplicative attenuation ``[T, 18, P]`` of each static path by the body.

    Each body part attenuates a path by ``1 − depth·exp(−r² / 2w²)`` where ``r`` is its distance
    to the path's route and ``w = √(radius² + (Fresnel half-width / 2)²)``.
    """
    a = routes[..., 0, :]                       # [18, P, 2, 3]
    ab = routes[..., 1, :] - a
    ab2 = np.maximum((ab**2).sum(-1), 1e-12)
    q = points[:, :, None, None, None, :]       # [T, S, 1, 1, 1, 3]
    u = np.clip(((q - a) * ab).sum(-1) / ab2, 0.0, 1.0)
    r2 = ((a + u[..., None] * ab - q) ** 2).sum(-1).min(-1)   # [T, S, 18, P]
    w2 = (radius**2 + (FRESNEL_HALF_WIDTH / 2) ** 2)[None, :, None, None]
    loss = 1.0 - depth[None, :, None, None] * np.exp(-r2 / (2 * w2))
    return loss.prod(axis=1)
