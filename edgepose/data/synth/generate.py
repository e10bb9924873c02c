"""Generate a synthetic CSI pose dataset in one of the on-disk layouts the readers understand.

``wiflow`` (the default, :mod:`.write_wiflow`) writes the WiFlow preprocessed layout —
``[N, 540, 20]`` windows, 15 joints; ``mmfi`` (:mod:`.write_mmfi`) writes the MM-Fi layout —
``E01/S01/A01/wifi-csi/frameNNN.mat`` frames of ``(3, 114, 10)``, 17 joints. Both share the
room, the subjects, the motions and the impairments (:mod:`.recording`, :mod:`.channel`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from edgepose.data.synth.recording import FLOOR_MARKS, SynthConfig
from edgepose.data.synth.write_mmfi import write_mmfi
from edgepose.data.synth.write_wiflow import GENERATOR_VERSION, write_wiflow

#: Layout name → writer ``(out, cfg, overwrite, progress) -> meta``.
WRITERS = {"wiflow": write_wiflow, "mmfi": write_mmfi}
LAYOUTS = tuple(WRITERS)

#: The default config of each layout. MM-Fi: one take per (subject, action) sequence, 297
#: frames of 10 packets at 100 packets/s (29.7 s), frames back to back.
DEFAULT_CONFIGS = {
    "wiflow": SynthConfig(),
    "mmfi": SynthConfig(takes=1, duration_s=29.7, window=10, stride=10),
}


def default_config(layout: str = "wiflow") -> SynthConfig:
    """The default :class:`SynthConfig` of ``layout``; raises ``ValueError`` for an unknown layout."""
    _check_layout(layout)
    return DEFAULT_CONFIGS[layout]


def synthesize(out: str | Path, cfg: SynthConfig | None = None, overwrite: bool = False,
               progress: Callable[[int, int], None] | None = None, layout: str = "wiflow") -> dict:
    """Generate the dataset into ``out`` (atomically) in ``layout`` and return its metadata.

    ``cfg`` defaults to :func:`default_config` of the layout; ``progress(done, total)`` is called
    after each recording. Raises ``ValueError`` for an unknown layout or a config the layout
    cannot hold (recordings shorter than one window; ``takes != 1`` for MM-Fi).
    """
    _check_layout(layout)
    return WRITERS[layout](out, default_config(layout) if cfg is None else cfg, overwrite, progress)


def _check_layout(layout: str) -> None:
    if layout not in WRITERS:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")


__all__ = ["DEFAULT_CONFIGS", "FLOOR_MARKS", "GENERATOR_VERSION", "LAYOUTS", "SynthConfig", "default_config",
           "synthesize"]
