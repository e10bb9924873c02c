"""Loss, configuration, checkpoints and the training loop."""

from .checkpoint import load_checkpoint, read_card, save_checkpoint
from .config import TrainConfig
from .loss import PoseLoss
from .trainer import fit

__all__ = ["PoseLoss", "TrainConfig", "fit", "load_checkpoint", "read_card", "save_checkpoint"]


from .._callable import make_callable as _make_callable  # noqa: E402

_make_callable(__name__)  # ep.train(...) calls edgepose.api.train
