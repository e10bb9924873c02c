"""Generate a synthetic CSI pose dataset in one of the on-disk layouts the readers understand.

``wiflow`` (the default, :mod:`.write_wiflow`) writes the WiFlow preprocessed layout —
``[N, 540, 20]`` windows, 15 joints; ``mmfi`` (:mod:`.write_mmfi`) writes the MM-Fi layout —
``E01/S01/A01/wifi-csi/frameNNN.mat`` frames of ``(3, 114, 10)``, 17 joints. Both share the
room, the subjects, the motions and the impairments (:mod:`.recording`, :mod:`.channel`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from dataclasses import replace

from edgepose.data.synth.recording import V1_DEFAULT, V2_DEFAULT, SynthConfig
from edgepose.data.synth.versions import FLOOR_MARKS, GENERATOR_VERSION, GENERATOR_VERSIONS
from edgepose.data.synth.write_mmfi import write_mmfi
from edgepose.data.synth.write_wiflow import write_wiflow

#: Layout name → writer ``(out, cfg, overwrite, progress, workers) -> meta``.
WRITERS = {"wiflow": write_wiflow, "mmfi": write_mmfi}
LAYOUTS = tuple(WRITERS)

#: The default config of each (layout, generator version). WiFlow v2: training files cut every 5
#: packets, the rest every 20 (``SynthConfig(train_stride=None)`` is the earlier v2 default, the
#: data of the first v2 zoo). MM-Fi: one take per (subject, action) sequence, 297 frames of 10
#: packets at 100 packets/s (29.7 s), frames back to back.
DEFAULT_CONFIGS = {
    ("wiflow", 2): V2_DEFAULT,
    ("mmfi", 2): SynthConfig(subjects=10, takes=1, duration_s=29.7, window=10, stride=10),
    ("wiflow", 1): V1_DEFAULT,
    ("mmfi", 1): replace(V1_DEFAULT, takes=1, duration_s=29.7, window=10, stride=10),
}


def default_config(layout: str = "wiflow", version: int = GENERATOR_VERSION) -> SynthConfig:
    """The default :class:`SynthConfig` of ``layout`` under generator ``version``; raises
    ``ValueError`` for an unknown layout or version."""
    _check_layout(layout)
    if version not in GENERATOR_VERSIONS:
        raise ValueError(f"unknown synthetic generator version {version!r}; this install has "
                         f"{', '.join(map(str, GENERATOR_VERSIONS))}")
    return DEFAULT_CONFIGS[layout, version]


def synthesize(out: str | Path, cfg: SynthConfig | None = None, overwrite: bool = False,
               progress: Callable[[int, int], None] | None = None, layout: str = "wiflow",
               workers: int | None = None) -> dict:
    """Generate the dataset into ``out`` (atomically) in ``layout`` and return its metadata.

    ``cfg`` defaults to :func:`default_config` of the layout; ``progress(done, total)`` is called
    after each recording. ``workers``: processes that simulate recordings (None:
    :func:`.pool.default_workers`; 1: this process only); the data written does not depend on it
    (only ``synth_meta.json``'s wall time and MM-Fi ``.mat`` headers' creation time differ between
    any two runs). Raises ``ValueError`` for an unknown layout or a config the layout cannot hold
    (recordings shorter than one window; ``takes != 1`` for MM-Fi).
    """
    _check_layout(layout)
    return WRITERS[layout](out, default_config(layout) if cfg is None else cfg, overwrite, progress, workers)


def _check_layout(layout: str) -> None:
    if layout not in WRITERS:
        raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")


__all__ = ["DEFAULT_CONFIGS", "FLOOR_MARKS", "GENERATOR_VERSION", "GENERATOR_VERSIONS", "LAYOUTS", "SynthConfig", "default_config",
           "synthesize"]
