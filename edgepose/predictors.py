"""One predictor for any model file: a torch checkpoint or an exported ONNX artifact.

:func:`load_predictor` returns the ``windows → keypoints`` callable together with the checkpoint
card that locks its scoring (the artifact's parent for ONNX files) and the window shape and joint
count the model takes, so a caller can score it on the right dataset and split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgepose.errors import EdgeposeError

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to score: its predictor, the checkpoint card that locks scoring, its input contract."""

    predict: Predict
    checkpoint_card: dict
    window_shape: tuple[int, ...]
    joints: int | None


def load_predictor(path: Path, artifact_card: dict | None = None, device: str = "cpu") -> LoadedModel:
    """Load ``path`` (``.onnx`` with its card, or a checkpoint / run folder) as a predictor."""
    path = Path(path)
    if path.suffix == ".onnx" or artifact_card is not None:
        from edgepose.exporting.card import parent_card, read_artifact_card
        from edgepose.runtime.session import ort_predict, ort_session

        card = artifact_card if artifact_card is not None else read_artifact_card(path)
        if card is None:
            raise EdgeposeError(f"no card {path.name}.json beside the artifact", path)
        sess = ort_session(path)
        return LoadedModel(lambda x: ort_predict(sess, x), parent_card([card]),
                           tuple(card.get("window_shape") or ()), card.get("joints"))
    from edgepose.evaluation import torch_predictor
    from edgepose.training.checkpoint import load_checkpoint

    net, card = load_checkpoint(path)
    return LoadedModel(torch_predictor(net, device), card, (net.cfg.in_channels, net.cfg.window), net.cfg.joints)
