"""The TCN channel padding is an exact rewrite: same outputs, zero padded channels, shapes that meet the rule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgepose.models import create
from edgepose.models.padding import ChannelLayout, pad_tcn_channels, tcn_padding, why_not_padded


def _randomised(name: str, seed: int = 0, **overrides) -> nn.Module:
    """A variant with random weights and non-trivial BatchNorm statistics (eval mode)."""
    torch.manual_seed(seed)
    model = create(name, **overrides).eval()
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm1d):
            mod.running_mean.normal_()
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.normal_()
            mod.bias.data.normal_()
    return model


@pytest.mark.parametrize("name, padded", [
    ("wiflow-half", [280, 220, 180, 120]),
    ("wiflow-quarter", [140, 120, 100, 60]),
    ("wiflow-tiny", [68, 56, 44, 32]),      # depthwise: never padded (widths are multiples of 4 anyway)
    ("wiflow-full", [540, 440, 340, 240]),  # already multiples of 4
])
@pytest.mark.parametrize("batch", [1, 37])
def test_padded_model_computes_the_same_function(name, padded, batch):
    model = _randomised(name)
    pad = pad_tcn_channels(model)
    assert [lay.padded for lay in tcn_padding(model)] == padded
    assert pad.tcn_padded_widths == padded
    x = torch.randn(batch, model.cfg.in_channels, model.cfg.window)
    with torch.no_grad():
        ref, out = model(x), pad(x)
    assert out.shape == ref.shape == (batch, model.cfg.joints, 2)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_padding_meets_the_channel_rule_and_keeps_groups():
    model = _randomised("wiflow-half")
    pad = pad_tcn_channels(model)
    for (name, a), (_, b) in zip(model.tcn.named_modules(), pad.tcn.named_modules()):
        if isinstance(a, nn.Conv1d):
            assert b.groups == a.groups, name  # grouped convs stay grouped the same way
            if a.groups == 1 and name != "3.body.12":  # the pointwise convs (the TCN's output keeps its width)
                assert b.in_channels % 4 == 0 and b.out_channels % 4 == 0, (name, b)
    # the original is untouched
    assert [m.out_channels for m in model.tcn.modules() if isinstance(m, nn.Conv1d)][0] == 540
    assert model.tcn[0].body[4].out_channels == 270


def test_padded_channels_are_exactly_zero_between_blocks():
    model = _randomised("wiflow-half", seed=1)
    pad = pad_tcn_channels(model)
    layouts = tcn_padding(model)
    outs: list[torch.Tensor] = []
    hooks = [blk.register_forward_hook(lambda m, i, o: outs.append(o)) for blk in pad.tcn]
    with torch.no_grad():
        pad(torch.randn(5, 540, 20))
    for h in hooks:
        h.remove()
    for out, lay in zip(outs, layouts):
        assert out.shape[1] == lay.padded
        real = torch.zeros(lay.padded, dtype=torch.bool)
        real[lay.positions()] = True
        assert torch.count_nonzero(out[:, ~real]) == 0
        assert torch.count_nonzero(out[:, real]) > 0


@pytest.mark.parametrize("width, groups, padded", [(270, 10, 280), (170, 10, 180), (220, 20, 220), (85, 5, 100),
                                                   (21, 1, 24), (36, 36, 36)])
def test_layout_positions_are_distinct_and_grouped(width, groups, padded):
    lay = ChannelLayout.for_width(width, groups)
    assert lay.padded == padded and lay.padded % 4 == 0
    pos = lay.positions()
    assert len(set(pos.tolist())) == width and int(pos.max()) < padded
    # each real channel stays in its own group
    size, padded_size = width // groups, padded // groups
    assert torch.equal(pos // padded_size, torch.arange(width) // size)


@pytest.mark.parametrize("tcn_channels, padded", [
    ([270, 270, 170, 120], [280, 280, 180, 120]),  # identity residual between two padded tensors
    ([270, 270], [270, 270]),                       # identity residual into the TCN's output: stays unpadded
    ([540, 270, 270], [540, 270, 270]),             # identity from the input, identity into the output
    ([270, 170, 170, 120], [280, 180, 180, 120]),
])
def test_identity_residuals_share_their_layout(tcn_channels, padded):
    """A block that keeps its width adds its input as it is, so its input and output are padded alike,
    and a run of such blocks that reaches the TCN's input or output is not padded at all."""
    model = _randomised("wiflow-half", seed=2, tcn_channels=tcn_channels)
    assert any(isinstance(block.residual, nn.Identity) for block in model.tcn)
    pad = pad_tcn_channels(model)
    assert pad.tcn_padded_widths == padded
    # the modules hold those widths (the pointwise conv writes the block's output), residuals stay as they were
    assert [block.body[4].out_channels for block in pad.tcn] == padded
    assert [type(b.residual) for b in pad.tcn] == [type(b.residual) for b in model.tcn]
    x = torch.randn(7, model.cfg.in_channels, model.cfg.window)
    with torch.no_grad():
        torch.testing.assert_close(pad(x), model(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, overrides, reason", [
    ("wiflow-half", {}, None),
    ("wiflow-tiny", {}, "depthwise or grouped"),
    ("wiflow-half", {"tcn_input_groups": 4}, "depthwise or grouped"),
    ("wiflow-full", {}, "already a multiple of 4"),
    ("wiflow-half", {"tcn_channels": [270, 270]}, "tied by identity residuals"),
    ("wiflow-half", {"tcn_channels": [271, 170, 120]}, None),  # gcd(271, 20) = 1: one group, 271 → 272
])
def test_why_a_model_is_left_unpadded(name, overrides, reason):
    model = _randomised(name, **overrides)
    why = why_not_padded(model)
    assert (why is None) == (reason is None) and (reason is None or reason in why)
    pad = pad_tcn_channels(model)
    widths = [block.body[4].out_channels for block in pad.tcn]
    assert (widths == list(model.cfg.tcn_channels)) == (reason is not None)
