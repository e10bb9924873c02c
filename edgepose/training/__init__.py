"""Loss, configuration, checkpoints and the training loop."""

from edgepose.training.checkpoint import load_checkpoint, read_card, save_checkpoint
from edgepose.training.config import TrainConfig
from edgepose.training.loss import PoseLoss
from edgepose.training.trainer import fit

__all__ = ["PoseLoss", "TrainConfig", "fit", "load_checkpoint", "read_card", "save_checkpoint"]
