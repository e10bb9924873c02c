"""Exact channel padding of the WiFlow TCN, so ONNX Runtime's int8 convolutions can use both cores.

ONNX Runtime's x86 ``QLinearConv`` splits a batch across threads only on its "symmetric" path,
which an ungrouped convolution takes when its input and output channel counts are multiples of 4
(AVX-512; 8 on AVX2-only CPUs) — ``docs/int8-threads.md`` has the rule and the measurements. The
half model's TCN widths 270 and 170 miss it, so its pointwise int8 convolutions run one image after
another on one core.

:func:`pad_tcn_channels` returns a copy of a model whose TCN tensors of such widths carry extra
channels that are **exactly zero** and that every consumer ignores (its weights on them are zero):
the function is unchanged, bit for bit up to the order of float additions. The extra channels are
added *per group* (27 → 28 channels in each of 10 groups: 270 → 280), so the grouped temporal
convolutions keep their group count and stay grouped convolutions of the same kind. The TCN's
input (the CSI channels) and output (what the 2-D stack reads) keep their widths, so the rest of the
network, its module names and the ONNX graph's interface do not change.

A padded channel stays zero through every layer because its convolution weights and bias are zero,
its BatchNorm has scale and shift zero, ``SiLU(0) = 0`` and a residual sum of two zeros is zero; in
int8 it is zero too (zero is exactly representable in every activation's quantization range, and a
weight channel of zeros quantizes to zeros).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from edgepose.models.wiflow import TemporalBlock, WiFlowSTD

__all__ = ["ChannelLayout", "pad_tcn_channels", "tcn_padding", "why_not_padded"]

#: the channel multiple ONNX Runtime's batch-parallel int8 convolution needs with AVX-512 / VNNI
#: (AVX2-only CPUs need 8 on the output side; 4 is what the boxes we measure on need).
DEFAULT_MULTIPLE = 4


@dataclass(frozen=True)
class ChannelLayout:
    """Where each of a tensor's ``width`` real channels sits in its padded form of ``padded`` channels.

    Channels come in ``groups`` equal groups; group *r*'s real channels occupy the first
    ``width // groups`` places of the padded group *r*, the rest of the group is zero.
    """

    width: int
    groups: int
    padded: int

    @classmethod
    def for_width(cls, width: int, groups: int, multiple: int = DEFAULT_MULTIPLE) -> "ChannelLayout":
        """The smallest per-group padding that makes the width a multiple of ``multiple``."""
        per_group = width // groups
        padded_group = per_group
        while (groups * padded_group) % multiple:
            padded_group += 1
        return cls(width, groups, groups * padded_group)

    @classmethod
    def identity(cls, width: int) -> "ChannelLayout":
        """No padding."""
        return cls(width, 1, width)

    @property
    def is_identity(self) -> bool:
        return self.padded == self.width

    def positions(self) -> torch.Tensor:
        """Padded index of each real channel, ``[width]``."""
        size, padded_size = self.width // self.groups, self.padded // self.groups
        c = torch.arange(self.width)
        return (c // size) * padded_size + c % size


def tcn_padding(model: WiFlowSTD, multiple: int = DEFAULT_MULTIPLE) -> list[ChannelLayout]:
    """The output layout of each TCN block that :func:`pad_tcn_channels` would use.

    The last block's output stays unpadded (the 2-D stack reads it), so does every tensor an identity
    residual joins to it or to the TCN's input (a block that keeps its width adds its input unchanged),
    and so do models whose TCN is depthwise or whose first pointwise convolution is grouped (their convolutions cannot take the
    batch-parallel path whatever their width).
    """
    cfg = model.cfg
    widths = list(cfg.tcn_channels)
    if cfg.tcn_depthwise or cfg.tcn_input_groups != 1:
        return [ChannelLayout.identity(w) for w in widths]
    # tensors 0..n: the TCN's input, then each block's output. A block whose width does not change has
    # an identity residual, which adds its input to its output as they are: both must share one layout.
    # So tensors joined by such blocks form runs, and a run that reaches the TCN's input or its output
    # (fixed widths) stays unpadded.
    tensors = [cfg.in_channels, *widths]
    run_of = [0]
    for i in range(1, len(tensors)):
        run_of.append(run_of[-1] if tensors[i] == tensors[i - 1] else run_of[-1] + 1)
    fixed = {run_of[0], run_of[-1]}
    return [ChannelLayout.identity(w) if run_of[i + 1] in fixed
            else ChannelLayout.for_width(w, math.gcd(w, 20), multiple) for i, w in enumerate(widths)]


def why_not_padded(model: WiFlowSTD, multiple: int = DEFAULT_MULTIPLE) -> str | None:
    """Why :func:`pad_tcn_channels` leaves ``model`` as it is, or ``None`` when it pads some width."""
    cfg = model.cfg
    if cfg.tcn_depthwise or cfg.tcn_input_groups != 1:
        return ("a depthwise or grouped TCN: its convolutions cannot take the batch-parallel path "
                "whatever their width")
    if any(not lay.is_identity for lay in tcn_padding(model, multiple)):
        return None
    if all(w % multiple == 0 for w in cfg.tcn_channels):
        return f"every TCN width is already a multiple of {multiple}"
    return ("the widths that are not multiples of {m} are tied by identity residuals (blocks that keep "
            "their width) to the TCN's input or output, which keep theirs").format(m=multiple)


def pad_tcn_channels(model: WiFlowSTD, multiple: int = DEFAULT_MULTIPLE) -> WiFlowSTD:
    """A copy of ``model`` (eval mode) whose TCN widths are multiples of ``multiple``; same function.

    Returns the deep copy unchanged (but still a copy) when nothing needs padding. The copy keeps
    ``cfg`` (the architecture it computes) and records the widths it holds in ``tcn_padded_widths``.
    """
    model = copy.deepcopy(model).eval()
    layouts = tcn_padding(model, multiple)
    current = ChannelLayout.identity(model.cfg.in_channels)
    for block, out_layout in zip(model.tcn, layouts):
        _pad_block(block, current, out_layout)
        current = out_layout
    model.tcn_padded_widths = [layout.padded for layout in layouts]
    return model


def _pad_block(block: TemporalBlock, lin: ChannelLayout, lout: ChannelLayout) -> None:
    """Pad one temporal block in place: its convolutions map ``lin`` → ``lout``."""
    if lin.is_identity and lout.is_identity:
        return
    layout = lin
    modules = block.body._modules
    for name, module in list(modules.items()):
        if isinstance(module, nn.Conv1d):
            target = lout if module.out_channels == lout.width and module.groups == 1 and layout is lin else None
            new_out = target or layout  # pointwise lin → lout once; every other conv keeps the width
            modules[name] = _pad_conv(module, layout, new_out)
            layout = new_out
        elif isinstance(module, nn.BatchNorm1d):
            modules[name] = _pad_batchnorm(module, layout)
    if isinstance(block.residual, nn.Sequential):
        res = block.residual._modules
        res["0"] = _pad_conv(res["0"], lin, lout)
        res["1"] = _pad_batchnorm(res["1"], lout)


def _pad_conv(conv: nn.Conv1d, lin: ChannelLayout, lout: ChannelLayout) -> nn.Conv1d:
    """``conv`` reading ``lin`` and writing ``lout``, zero on every padded input and output channel."""
    w = conv.weight.detach()
    groups = conv.groups
    if conv.in_channels != lin.width or conv.out_channels != lout.width:
        raise ValueError(f"convolution {conv.in_channels}→{conv.out_channels} does not map "
                         f"{lin.width}→{lout.width} channels")
    new = torch.zeros(lout.padded, lin.padded // groups, *w.shape[2:], dtype=w.dtype)
    out_pos = lout.positions()
    if groups == 1:
        new[out_pos[:, None], lin.positions()[None, :]] = w
    else:  # grouped: padding happens per group, so a group's real inputs are its first ones
        if lin != lout:
            raise ValueError("a grouped convolution must keep its channel layout")
        new[out_pos, : w.shape[1]] = w
    padded = nn.Conv1d(lin.padded, lout.padded, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                       dilation=conv.dilation, groups=groups, bias=conv.bias is not None)
    padded.weight = nn.Parameter(new)
    if conv.bias is not None:
        bias = torch.zeros(lout.padded, dtype=w.dtype)
        bias[out_pos] = conv.bias.detach()
        padded.bias = nn.Parameter(bias)
    return padded


def _pad_batchnorm(bn: nn.BatchNorm1d, layout: ChannelLayout) -> nn.BatchNorm1d:
    """``bn`` over ``layout``'s padded channels: scale and shift zero on the padding."""
    padded = nn.BatchNorm1d(layout.padded, eps=bn.eps, momentum=bn.momentum).eval()
    pos = layout.positions()
    with torch.no_grad():
        for name, fill in (("weight", 0.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            src = getattr(bn, name)
            dst = getattr(padded, name)
            dst.fill_(fill)
            dst[pos] = src.detach()
    return padded
