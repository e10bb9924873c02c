"""Fold every BatchNorm that directly follows a convolution into that convolution.

Runs on a copy of an eval-mode model before export, so the ONNX graph (and the QAT simulation,
which must see the same weights the int8 graph will hold) has no standalone BN behind a conv.
BatchNorms that follow a MatMul (the attention's logits and output) stay; the exporter emits
them as one ``BatchNormalization`` each.
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from edgepose.models.wiflow import AxialAttention

_CONVS = (nn.Conv1d, nn.Conv2d)
_BNS = (nn.BatchNorm1d, nn.BatchNorm2d)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A folded, eval-mode deep copy of ``model``; the original is untouched."""
    model = copy.deepcopy(model).eval()
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            children = list(module._modules.items())
            for (name_a, a), (name_b, b) in zip(children, children[1:]):
                if isinstance(a, _CONVS) and isinstance(b, _BNS):
                    module._modules[name_a] = fuse_conv_bn_eval(a, b)
                    module._modules[name_b] = nn.Identity()
        if isinstance(module, AxialAttention) and isinstance(module.bn_qkv, _BNS):
            module.qkv = fuse_conv_bn_eval(module.qkv, module.bn_qkv)
            module.bn_qkv = nn.Identity()
    return model
