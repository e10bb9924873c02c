"""CSI as a sum of propagation paths, then the impairments real Intel 5300-class hardware adds.

``H(f_k, t) = Σ_p a_p(t) · exp(−j 2π f_k L_p(t) / c)`` over static paths (line of sight, walls,
floor, ceiling, furniture) and one bistatic path per body scatterer, with
``a = λ·√σ / ((4π)^1.5 · d_tx · d_rx)``; body parts near a static path's route shadow it
(a Fresnel-zone attenuation, smooth in the pose, unlike the wavelength-scale reflection phases).
Impairments, in signal order: fixed per-chain amplitude
ripple, per-packet random common phase (CFO) and timing-offset phase slope, complex thermal
noise, automatic gain control (1 dB steps, per-packet jitter, occasional level jumps), signed
integer I/Q quantisation (8-bit Intel 5300, 10-bit Atheros), and packet loss filled by holding the
previous packet. :func:`received_csi` returns the complex CSI of any :class:`Radio`;
:func:`csi_amplitude` is the WiFlow rig's amplitude, scaled by a fixed 1/64 so clean windows stay
well inside |x| ≤ 1.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgepose.data.synth.scene import (ATHEROS_HT40_TONES, C, CENTER_HZ, INTEL5300_GROUPS, SUBCARRIER_SPACING_HZ, Room, body_points,
                    shadowing)

AGC_TARGET_LSB = 24.0
OUTPUT_SCALE = 1.0 / 64.0


@dataclass(frozen=True)
class Radio:
    """One CSI capture setup: which of the room's antennas are used, which tones, which I/Q format.

    Links are ordered ``[receiver, tx antenna, rx antenna]`` and take the first ``receivers``
    receivers, ``tx_antennas`` transmit and ``rx_antennas`` receive antennas of the :class:`Room`
    (2 × 3 × 3 at most). ``iq_bits`` is the signed width of the reported I and Q values.
    """

    name: str
    receivers: int
    tx_antennas: int
    rx_antennas: int
    tones: np.ndarray
    iq_bits: int
    agc_target_lsb: float

    @property
    def n_links(self) -> int:
        return self.receivers * self.tx_antennas * self.rx_antennas

    def link_index(self) -> np.ndarray:
        """Indices of this radio's links among the room's 18 ``[receiver, tx, rx antenna]`` links."""
        if not (1 <= self.receivers <= 2 and 1 <= self.tx_antennas <= 3 and 1 <= self.rx_antennas <= 3):
            raise ValueError(f"radio {self.name!r} asks for more antennas than the room has")
        return np.array([r * 9 + t * 3 + a for r in range(self.receivers) for t in range(self.tx_antennas)
                         for a in range(self.rx_antennas)])


#: The WiFlow rig: two Intel 5300 receivers, 3 × 3 antennas each, 30 subcarrier groups, int8 I/Q.
INTEL5300 = Radio("intel5300-2x3x3-ht20", 2, 3, 3, INTEL5300_GROUPS, 8, AGC_TARGET_LSB)
#: The MM-Fi rig: one transmit antenna, one Atheros receiver with 3 antennas, 114 HT40 tones,
#: 10-bit I/Q (the AGC aims four times higher than on the 8-bit Intel card).
ATHEROS_HT40 = Radio("atheros-1x3-ht40", 1, 1, 3, ATHEROS_HT40_TONES, 10, 4 * AGC_TARGET_LSB)


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
    chunk: int = 128, agc_compensated: bool = False,
) -> tuple[np.ndarray, dict]:
    """Amplitude CSI ``float32 [T, 540]`` of the WiFlow rig for a ``[T, 15, 3]`` joint trajectory.

    Returns the CSI (scaled by :data:`OUTPUT_SCALE`) and the diagnostics of :func:`received_csi`.
    """
    h, diag = received_csi(joints, room, reflectivity, imp, rng, INTEL5300, room.ripple.reshape(18, -1), chunk,
                           agc_compensated)
    amp = np.abs(h).reshape(len(h), -1) * OUTPUT_SCALE
    return amp.astype(np.float32), diag


def received_csi(
    joints: np.ndarray, room: Room, reflectivity: float, imp: Impairments, rng: np.random.Generator,
    radio: Radio, ripple: np.ndarray, chunk: int = 128, agc_compensated: bool = False,
) -> tuple[np.ndarray, dict]:
    """Complex CSI ``[T, links, tones]`` as ``radio`` reports it, for a ``[T, 15, 3]`` trajectory.

    ``ripple`` is the fixed per-chain amplitude ripple ``[links, tones]``. Values are the
    quantised I/Q in the radio's integer units; lost packets repeat the previous packet.
    Returns the CSI and diagnostics (median dynamic-to-static power ratio in dB — the dynamic
    part includes both body reflections and the body's shadowing of static paths — and the
    number of lost packets). With ``agc_compensated`` the capture software undoes the gain
    setting the card reports with every packet (its 1 dB steps and level jumps), as the Intel
    CSI tool's scaling does, back to the gain the static channel alone would get; what the
    report does not know — the analog gain's per-packet jitter — and the quantisation at the
    gain actually used stay in the data.
    """
    n_rx, n_tx, n_ant = radio.receivers, radio.tx_antennas, radio.rx_antennas
    n_links = radio.n_links
    tx, rx = room.links()                                   # [18, 3]
    s_amp, s_len, routes = room.static_paths()              # [18, P]
    links = radio.link_index()
    if not np.array_equal(links, np.arange(18)):
        tx, rx, s_amp, s_len, routes = tx[links], rx[links], s_amp[links], s_len[links], routes[links]
    tones = radio.tones
    freqs = CENTER_HZ + tones * SUBCARRIER_SPACING_HZ       # [K]
    k_wave = 2 * np.pi * freqs / C                          # [K]
    static_terms = s_amp[..., None] * np.exp(-1j * s_len[..., None] * k_wave)   # [L, P, K]
    h_static = static_terms.sum(1)
    pts, rcs, radius, depth = body_points(joints)           # [T, S, 3], [S]
    lam = room.wavelength
    t_len = len(joints)
    h_dyn = np.empty((t_len, n_links, len(freqs)), dtype=np.complex128)
    for start in range(0, t_len, chunk):
        p = pts[start : start + chunk]
        d_tx = np.linalg.norm(p[:, :, None, :] - tx[None, None], axis=-1)   # [t, S, L]
        d_rx = np.linalg.norm(p[:, :, None, :] - rx[None, None], axis=-1)
        amp = lam * np.sqrt(rcs * reflectivity)[None, :, None] / ((4 * np.pi) ** 1.5 * d_tx * d_rx)
        length = d_tx + d_rx
        h_dyn[start : start + chunk] = np.einsum("tsl,tslk->tlk", amp, np.exp(-1j * length[..., None] * k_wave))
        # the body also shadows the static paths it stands close to
        att = shadowing(p, radius, depth, routes)           # [t, L, P]
        h_dyn[start : start + chunk] += np.einsum("tlp,lpk->tlk", att - 1.0, static_terms)
    ratio_db = 10 * np.log10(np.median(np.mean(np.abs(h_dyn) ** 2, -1)) / np.median(np.mean(np.abs(h_static) ** 2, -1)))

    h = (h_static[None] + h_dyn) * ripple[None]
    # per-packet common phase and timing-offset slope, one pair per receiver
    cfo = rng.uniform(0, 2 * np.pi, (t_len, n_rx))
    tau = rng.uniform(0, imp.timing_offset_ns * 1e-9, (t_len, n_rx))
    rot = np.exp(1j * (cfo[..., None] - 2 * np.pi * tau[..., None] * tones * SUBCARRIER_SPACING_HZ))
    h = h * np.repeat(rot, n_tx * n_ant, axis=1)
    # thermal noise at the recording's SNR, relative to the mean received power
    p_sig = np.mean(np.abs(h) ** 2)
    sigma = np.sqrt(p_sig / 10 ** (imp.snr_db / 10) / 2)
    h = h + sigma * (rng.standard_normal(h.shape) + 1j * rng.standard_normal(h.shape))
    # AGC per receive chain (receiver × rx antenna): aims the RMS at a target, in 1 dB steps
    h = h.reshape(t_len, n_rx, n_tx, n_ant, -1)
    rms = np.sqrt(np.mean(np.abs(h) ** 2, axis=(2, 4)))    # [T, receivers, rx antennas]
    gain_db = np.round(20 * np.log10(radio.agc_target_lsb / rms))
    jumps = rng.uniform(size=(t_len, n_rx, n_ant)) < imp.agc_jump_rate
    gain_db = gain_db + np.cumsum(jumps * rng.choice([-2.0, -1.0, 1.0, 2.0], size=jumps.shape), axis=0).clip(-3, 3)
    actual_db = gain_db + rng.normal(0, 0.25, gain_db.shape)
    h = h * (10 ** (actual_db / 20))[:, :, None, :, None]
    # signed integer I/Q as the card reports it
    lo, hi = -(2 ** (radio.iq_bits - 1)), 2 ** (radio.iq_bits - 1) - 1
    h = np.clip(np.round(h.real), lo, hi) + 1j * np.clip(np.round(h.imag), lo, hi)
    if agc_compensated:
        static = (h_static * ripple).reshape(n_rx, n_tx, n_ant, -1)
        ref_db = np.round(20 * np.log10(radio.agc_target_lsb / np.sqrt(np.mean(np.abs(static) ** 2, axis=(1, 3)))))
        h = h * (10 ** ((ref_db[None] - gain_db) / 20))[:, :, None, :, None]
    h = h.reshape(t_len, n_links, -1)
    # packet loss: the receiver holds the previous packet
    lost = rng.uniform(size=t_len) < imp.packet_loss
    lost[0] = False
    keep = np.maximum.accumulate(np.where(lost, 0, np.arange(t_len)))
    return h[keep], {"dynamic_to_static_db": float(ratio_db), "lost_packets": int(lost.sum())}
