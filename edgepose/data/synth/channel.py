"""CSI as a sum of propagation paths, then the impairments real Intel 5300-class hardware adds.

``H(f_k, t) = Σ_p a_p(t) · exp(−j 2π f_k L_p(t) / c)`` over static paths (line of sight, walls,
floor, ceiling, furniture) and one bistatic path per body scatterer, with
``a = λ·√σ / ((4π)^1.5 · d_tx · d_rx)``; body parts near a static path's route shadow it
(a Fresnel-zone attenuation, smooth in the pose, unlike the wavelength-scale reflection phases).
Impairments, in signal order: fixed per-chain amplitude
ripple, per-packet random common phase (CFO) and timing-offset phase slope, complex thermal
noise, automatic gain control (1 dB steps, per-packet jitter, occasional level jumps), int8 I/Q
quantisation, and packet loss filled by holding the previous packet. The output is the amplitude
the driver reports, scaled by a fixed 1/64 so clean windows stay well inside |x| ≤ 1.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scene import C, CENTER_HZ, INTEL5300_GROUPS, SUBCARRIER_SPACING_HZ, Room, body_points, shadowing

AGC_TARGET_LSB = 24.0
OUTPUT_SCALE = 1.0 / 64.0


@dataclass(frozen=True)
class Impairments:
    """Noise and hardware parameters of one recording."""

    snr_db: float
    packet_loss: float
    agc_jump_rate: float  # jumps per packet
    timing_offset_ns: float

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Impairments":
        return cls(rng.uniform(25, 30), rng.uniform(0.01, 0.05), rng.uniform(0.0005, 0.002), rng.uniform(5, 50))


def csi_amplitude(
    joints: np.ndarray, room: Room, reflectivity: float, imp: Impairments, rng: np.random.Generator,
    chunk: int = 128,
) -> tuple[np.ndarray, dict]:
    """Amplitude CSI ``float32 [T, 540]`` for a ``[T, 15, 3]`` joint trajectory.

    Returns the CSI and diagnostics (median dynamic-to-static power ratio in dB; the dynamic
    part includes both body reflections and the body's shadowing of static paths).
    """
    tx, rx = room.links()                                   # [18, 3]
    freqs = CENTER_HZ + INTEL5300_GROUPS * SUBCARRIER_SPACING_HZ  # [K]
    k_wave = 2 * np.pi * freqs / C                          # [K]
    s_amp, s_len, routes = room.static_paths()              # [18, P]
    static_terms = s_amp[..., None] * np.exp(-1j * s_len[..., None] * k_wave)   # [18, P, K]
    h_static = static_terms.sum(1)
    pts, rcs, radius, depth = body_points(joints)           # [T, S, 3], [S]
    lam = room.wavelength
    t_len = len(joints)
    h_dyn = np.empty((t_len, 18, len(freqs)), dtype=np.complex128)
    for start in range(0, t_len, chunk):
        p = pts[start : start + chunk]
        d_tx = np.linalg.norm(p[:, :, None, :] - tx[None, None], axis=-1)   # [t, S, 18]
        d_rx = np.linalg.norm(p[:, :, None, :] - rx[None, None], axis=-1)
        amp = lam * np.sqrt(rcs * reflectivity)[None, :, None] / ((4 * np.pi) ** 1.5 * d_tx * d_rx)
        length = d_tx + d_rx
        h_dyn[start : start + chunk] = np.einsum("tsl,tslk->tlk", amp, np.exp(-1j * length[..., None] * k_wave))
        # the body also shadows the static paths it stands close to
        att = shadowing(p, radius, depth, routes)           # [t, 18, P]
        h_dyn[start : start + chunk] += np.einsum("tlp,lpk->tlk", att - 1.0, static_terms)
    ratio_db = 10 * np.log10(np.median(np.mean(np.abs(h_dyn) ** 2, -1)) / np.median(np.mean(np.abs(h_static) ** 2, -1)))

    h = (h_static[None] + h_dyn) * room.ripple.reshape(18, -1)[None]
    # per-packet common phase and timing-offset slope, one pair per receiver
    cfo = rng.uniform(0, 2 * np.pi, (t_len, 2))
    tau = rng.uniform(0, imp.timing_offset_ns * 1e-9, (t_len, 2))
    rot = np.exp(1j * (cfo[..., None] - 2 * np.pi * tau[..., None] * INTEL5300_GROUPS * SUBCARRIER_SPACING_HZ))
    h = h * np.repeat(rot, 9, axis=1)
    # thermal noise at the recording's SNR, relative to the mean received power
    p_sig = np.mean(np.abs(h) ** 2)
    sigma = np.sqrt(p_sig / 10 ** (imp.snr_db / 10) / 2)
    h = h + sigma * (rng.standard_normal(h.shape) + 1j * rng.standard_normal(h.shape))
    # AGC per receive chain (receiver × rx antenna): aims the RMS at a target, in 1 dB steps
    h = h.reshape(t_len, 2, 3, 3, -1)
    rms = np.sqrt(np.mean(np.abs(h) ** 2, axis=(2, 4)))    # [T, 2, 3]
    gain_db = np.round(20 * np.log10(AGC_TARGET_LSB / rms))
    jumps = rng.uniform(size=(t_len, 2, 3)) < imp.agc_jump_rate
    gain_db = gain_db + np.cumsum(jumps * rng.choice([-2.0, -1.0, 1.0, 2.0], size=jumps.shape), axis=0).clip(-3, 3)
    gain_db = gain_db + rng.normal(0, 0.25, gain_db.shape)
    h = h * (10 ** (gain_db / 20))[:, :, None, :, None]
    # int8 I/Q as the Intel 5300 reports it
    h = np.clip(np.round(h.real), -128, 127) + 1j * np.clip(np.round(h.imag), -128, 127)
    amp = np.abs(h).reshape(t_len, -1) * OUTPUT_SCALE
    # packet loss: the receiver holds the previous packet
    lost = rng.uniform(size=t_len) < imp.packet_loss
    lost[0] = False
    keep = np.maximum.accumulate(np.where(lost, 0, np.arange(t_len)))
    return amp[keep].astype(np.float32), {"dynamic_to_static_db": float(ratio_db), "lost_packets": int(lost.sum())}
