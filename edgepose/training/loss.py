"""Pose loss: smooth-L1 on joint positions plus a weighted smooth-L1 on bone lengths."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgepose.skeleton import JointLayout


class PoseLoss(nn.Module):
    """``smooth_l1(pred, gt; β_pos) + w · smooth_l1(bone_len(pred), bone_len(gt); β_bone)``.

    Defaults follow the reference recipe: β_pos 0.1, w 0.2, β_bone 0.05, bones of the layout.
    """

    def __init__(self, layout: JointLayout, beta: float = 0.1, bone_weight: float = 0.2, bone_beta: float = 0.05) -> None:
        super().__init__()
        bones = torch.tensor(layout.bones, dtype=torch.long)
        self.register_buffer("a", bones[:, 0], persistent=False)
        self.register_buffer("b", bones[:, 1], persistent=False)
        self.beta, self.bone_weight, self.bone_beta = beta, bone_weight, bone_beta

    def bone_lengths(self, kp: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(kp[:, self.a] - kp[:, self.b], dim=-1)

    def forward(self, pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        pos = F.smooth_l1_loss(pred, gt, beta=self.beta)
        if not self.bone_weight:
            return pos
        bone = F.smooth_l1_loss(self.bone_lengths(pred), self.bone_lengths(gt), beta=self.bone_beta)
        return pos + self.bone_weight * bone
