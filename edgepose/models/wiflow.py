"""WiFlow-STD: causal grouped TCN → asymmetric residual convs → dual axial attention → decoder.

The family follows the structure published with WiFlow (continuous WiFi pose estimation with
spatio-temporal decoupling); the four widths reproduce the parameter counts the project is held
to (full 2,225,042; half 843,834; quarter 338,600; tiny 56,290).

Export-minded choices:

* causal padding is an explicit left ``ConstantPad1d`` followed by an unpadded convolution, so
  the graph holds no slicing ("chomp") and the convolution sees exactly the causal window;
* the final pooling is a fixed ``AvgPool2d`` whose kernel is derived from the static feature
  width, never an adaptive pool with overlapping bins (ONNX cannot express those);
* every BatchNorm sits directly behind a convolution or a plain tensor, so it folds at export.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["WiFlowConfig", "WiFlowSTD"]


@dataclass(frozen=True)
class WiFlowConfig:
    """Every shape decision of one WiFlow-STD variant.

    Attributes:
        in_channels: CSI channels per time step (540 for the WiFlow layout, 342 for MM-Fi).
        window: time steps per window (20 for WiFlow, 10 for MM-Fi).
        joints: keypoints predicted (15 BODY_25 joints, 17 for Human3.6M).
        tcn_channels: output width of each temporal block; block *i* uses dilation ``2**i``.
        tcn_depthwise: use depthwise temporal convolutions instead of ``gcd(width, 20)`` groups.
        tcn_input_groups: groups of the first block's pointwise and residual 1×1 convolutions.
        conv_widths: widths of the residual 2-D blocks (the first block keeps the feature axis).
        attn_groups: groups of the dual axial attention.
        decoder_width: hidden width of the decoder's 3×3 convolution.
        kernel_size: temporal kernel size.
        dropout: dropout of the temporal and 2-D blocks.
        head_shift: where the decoder's final BN bias starts; the output map
            ``kp = (y − head_shift) · label_scale + label_offset`` keeps targets on SiLU's
            near-linear positive side (SiLU cannot go below −0.28).
    """

    in_channels: int = 540
    window: int = 20
    joints: int = 15
    tcn_channels: tuple[int, ...] = (270, 220, 170, 120)
    tcn_depthwise: bool = False
    tcn_input_groups: int = 1
    conv_widths: tuple[int, ...] = (4, 4, 8, 16, 32)
    attn_groups: int = 4
    decoder_width: int = 16
    kernel_size: int = 3
    dropout: float = 0.3
    head_shift: float = 3.0

    def to_dict(self) -> dict:
        """A JSON-ready copy (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "WiFlowConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``TypeError``."""
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fixed)


def _conv_bn_silu_1d(cin: int, cout: int, kernel: int, dilation: int, groups: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    pad = (kernel - 1) * dilation
    if pad:
        layers.append(nn.ConstantPad1d((pad, 0), 0.0))
    layers += [
        nn.Conv1d(cin, cout, kernel, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm1d(cout),
        nn.SiLU(),
    ]
    return layers


class TemporalBlock(nn.Module):
    """Two (grouped causal conv → BN → SiLU → 1×1 conv → BN → SiLU → dropout) stages plus a residual."""

    def __init__(self, cin: int, cout: int, dilation: int, cfg: WiFlowConfig, first: bool) -> None:
        super().__init__()
        g_in = cin if cfg.tcn_depthwise else math.gcd(cin, 20)
        g_out = cout if cfg.tcn_depthwise else math.gcd(cout, 20)
        # grouped input projection: the variant's group count where the channels allow it (any C works;
        # 540 channels keep the registered parameter count)
        pw_groups = math.gcd(cfg.tcn_input_groups, cin, cout) if first else 1
        k = cfg.kernel_size
        self.body = nn.Sequential(
            *_conv_bn_silu_1d(cin, cin, k, dilation, g_in),
            *_conv_bn_silu_1d(cin, cout, 1, 1, pw_groups),
            nn.Dropout(cfg.dropout),
            *_conv_bn_silu_1d(cout, cout, k, dilation, g_out),
            *_conv_bn_silu_1d(cout, cout, 1, 1, 1),
            nn.Dropout(cfg.dropout),
        )
        self.residual: nn.Module
        if cin != cout:
            self.residual = nn.Sequential(
                nn.Conv1d(cin, cout, 1, groups=pw_groups, bias=False), nn.BatchNorm1d(cout)
            )
        else:
            self.residual = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.body(x) + self.residual(x))


class AsymmetricBlock(nn.Module):
    """Three (1×3) convolutions along the feature axis with a strided 1×1 shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, dropout: float) -> None:
        super().__init__()
        s = (1, stride)
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, (1, 3), stride=s, padding=(0, 1)),
            nn.BatchNorm2d(cout),
            nn.SiLU(),
            nn.Dropout2d(dropout),
            nn.Conv2d(cout, cout, (1, 3), padding=(0, 1)),
            nn.BatchNorm2d(cout),
            nn.SiLU(),
            nn.Dropout2d(dropout),
            nn.Conv2d(cout, cout, (1, 3), padding=(0, 1)),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=s, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.body(x) + self.shortcut(x))


class AxialAttention(nn.Module):
    """Grouped self-attention along one axis of a ``[B, C, H, W]`` map (no scaling, no residual).

    ``axis="h"`` attends along H (each column is a sequence), ``axis="w"`` along W.
    """

    def __init__(self, cin: int, cout: int, groups: int, axis: str) -> None:
        super().__init__()
        if cout % groups:
            raise ValueError(f"attention width {cout} is not divisible by {groups} groups")
        self.groups, self.cout, self.axis = groups, cout, axis
        self.qkv = nn.Conv1d(cin, 3 * cout, 1, bias=False)
        self.bn_qkv = nn.BatchNorm1d(3 * cout)
        self.bn_logits = nn.BatchNorm2d(groups)
        self.bn_out = nn.BatchNorm1d(cout)
        nn.init.normal_(self.qkv.weight, 0.0, math.sqrt(1.0 / cin))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # written without tuple unpacking of shapes so torch.fx can trace it (reference baseline)
        b, c, h, w = x.size(0), x.size(1), x.size(2), x.size(3)
        if self.axis == "w":  # sequences run along W: one per (b, h)
            seq = x.permute(0, 2, 1, 3).reshape(b * h, c, w)
            outer, length = h, w
        else:  # sequences run along H: one per (b, w)
            seq = x.permute(0, 3, 1, 2).reshape(b * w, c, h)
            outer, length = w, h
        qkv = self.bn_qkv(self.qkv(seq))
        gp = self.cout // self.groups
        qkv = qkv.reshape(b * outer, 3, self.groups, gp, length)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]
        logits = self.bn_logits(torch.matmul(q.transpose(-1, -2), k))  # [N, G, L, L]
        attn = torch.softmax(logits, dim=-1)
        out = torch.matmul(v, attn.transpose(-1, -2))  # [N, G, gp, L]
        out = self.bn_out(out.reshape(b * outer, self.cout, length))
        out = out.reshape(b, outer, self.cout, length)
        return out.permute(0, 2, 1, 3) if self.axis == "w" else out.permute(0, 2, 3, 1)


class WiFlowSTD(nn.Module):
    """WiFi CSI window ``[B, C, T]`` → keypoints ``[B, J, 2]``."""

    def __init__(self, cfg: WiFlowConfig) -> None:
        super().__init__()
        self.cfg = cfg
        blocks, cin = [], cfg.in_channels
        for i, cout in enumerate(cfg.tcn_channels):
            blocks.append(TemporalBlock(cin, cout, 2**i, cfg, first=i == 0))
            cin = cout
        self.tcn = nn.Sequential(*blocks)

        feat = cfg.tcn_channels[-1]
        convs, c = [], 1
        for i, width in enumerate(cfg.conv_widths):
            stride = 2 if i > 0 and math.ceil(feat / 2) >= cfg.joints else 1
            feat = math.ceil(feat / stride)
            convs.append(AsymmetricBlock(c, width, stride, cfg.dropout))
            c = width
        self.convs = nn.Sequential(*convs)
        self.feature_rows = feat

        self.attn_w = AxialAttention(c, c, cfg.attn_groups, axis="w")
        self.attn_h = AxialAttention(c, c, cfg.attn_groups, axis="h")
        d = cfg.decoder_width
        self.decoder = nn.Sequential(
            nn.Conv2d(c, d, 3, padding=1), nn.BatchNorm2d(d), nn.SiLU(),
            nn.Conv2d(d, 2, 1), nn.BatchNorm2d(2), nn.SiLU(),
        )
        kernel, stride = _row_pool(feat, cfg.joints, cfg.window)
        self.pool = nn.AvgPool2d(kernel, stride)
        nn.init.constant_(self.decoder[-2].bias, cfg.head_shift)
        # Label normalisation (buffers, not parameters): the network regresses standardised
        # offsets from the training mean pose. Set by the trainer, saved with the weights.
        self.register_buffer("label_offset", torch.zeros(cfg.joints, 2))
        self.register_buffer("label_scale", torch.ones(2))

    @torch.no_grad()
    def set_label_stats(self, mean_pose: torch.Tensor, scale: torch.Tensor) -> None:
        """Use ``mean_pose [J, 2]`` and per-coordinate ``scale [2]`` as the output's origin and unit."""
        self.label_offset.copy_(torch.as_tensor(mean_pose, dtype=torch.float32))
        self.label_scale.copy_(torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.tcn(x)                        # [B, C', T]
        x = x.transpose(1, 2).unsqueeze(1)     # [B, 1, T, C']
        x = self.convs(x)                      # [B, W, T, F]
        x = x.transpose(2, 3)                  # [B, W, F, T]
        x = self.attn_h(self.attn_w(x))
        x = self.pool(self.decoder(x))         # [B, 2, J, 1]
        x = x.squeeze(-1).transpose(1, 2)      # [B, J, 2]
        return (x - self.cfg.head_shift) * self.label_scale + self.label_offset


def _row_pool(rows: int, joints: int, window: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Kernel and stride of a fixed pool taking ``rows × window`` to ``joints × 1``.

    Divisible widths pool disjoint row groups; ``rows = joints + k`` with ``rows < 2 joints``
    uses a (k+1)-row window at stride 1, which matches an adaptive pool of those sizes bin for bin.
    """
    if rows % joints == 0:
        r = rows // joints
        return (r, window), (r, window)
    if joints < rows < 2 * joints:
        return (rows - joints + 1, window), (1, window)
    raise ValueError(f"cannot pool {rows} feature rows to {joints} joints with a fixed kernel")
