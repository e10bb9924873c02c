"""The exact rewrites of ``benchmarks/tcn_fold.py`` (the TCN run as one image; the network after the
TCN alone), its derived ratios and its report renderer. No timed assertions."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import tcn_fold

from edgepose.models import create


def _trained_like(name: str, **overrides) -> torch.nn.Module:
    """A model with non-trivial batch-norm statistics, so a wrong BN swap would show."""
    torch.manual_seed(3)
    model = create(name, **overrides)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.mark.parametrize("name, overrides, batch", [
    ("wiflow-tiny", {}, 1),
    ("wiflow-tiny", {}, 37),
    ("wiflow-tiny", {"in_channels": 90, "window": 13}, 5),     # other shapes
    ("wiflow-quarter", {}, 3),
    ("wiflow-tiny", {"in_channels": 64, "tcn_channels": [64, 64]}, 4),  # equal widths: identity residuals
])
def test_fold_tcn_computes_the_same_function(name, overrides, batch):
    model = _trained_like(name, **overrides)
    folded = tcn_fold.fold_tcn(model)
    x = torch.randn(batch, model.cfg.in_channels, model.cfg.window)
    with torch.no_grad():
        ref, out = model(x), folded(x)
        tcn_ref, tcn_out = model.tcn(x), folded.tcn(x)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()
    assert torch.allclose(tcn_out, tcn_ref, atol=1e-5)
    # the rewrite is 2-D inside the TCN, and the names the quantization groups use are unchanged
    convs = [m for m in folded.tcn.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and not any(isinstance(m, torch.nn.Conv1d) for m in folded.tcn.modules())
    assert [n for n, _ in folded.named_modules()] == [n for n, _ in model.named_modules()]
    assert not any(m.training for m in folded.modules())
    assert any(isinstance(m, torch.nn.Conv1d) for m in model.tcn.modules())  # the original is untouched


def test_as_2d_keeps_every_conv_attribute():
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(6, 4, 3, stride=2, padding=1, dilation=2, groups=2, bias=True)
    twin = tcn_fold._as_2d(conv)
    assert isinstance(twin, torch.nn.Conv2d) and twin.groups == 2
    x = torch.randn(3, 6, 17)
    with torch.no_grad():
        ref = conv(x)
        out = twin(x.transpose(0, 1).unsqueeze(0)).squeeze(0).transpose(0, 1)
    assert out.shape == ref.shape and torch.allclose(out, ref, atol=1e-6)
    pad = tcn_fold._as_2d(torch.nn.ConstantPad1d((4, 1), 0.0))
    assert pad(torch.ones(1, 1, 2, 3)).shape == (1, 1, 2, 8)
    with pytest.raises(ValueError, match="padding_mode"):
        tcn_fold._as_2d(torch.nn.Conv1d(2, 2, 3, padding=1, padding_mode="reflect"))


def test_folded_tcn_does_not_mix_windows():
    """Changing one window changes only that window's output (no leakage through the image's height)."""
    model = _trained_like("wiflow-tiny")
    folded = tcn_fold.fold_tcn(model)
    x = torch.randn(6, 540, 20)
    y = x.clone()
    y[2] += 1.0
    with torch.no_grad():
        a, b = folded.tcn(x), folded.tcn(y)
    changed = (a - b).abs().flatten(1).amax(1) > 0
    assert changed.tolist() == [False, False, True, False, False, False]


def test_after_tcn_is_the_networks_tail():
    model = _trained_like("wiflow-tiny")
    tail = tcn_fold.AfterTCN(model)
    x = torch.randn(7, 540, 20)
    with torch.no_grad():
        feats = model.tcn(x)                                 # [B, C', T]
        padded = torch.cat([feats, torch.randn(7, 540 - feats.shape[1], 20)], 1)
        assert torch.allclose(tail(padded), model(x), atol=1e-5)


def test_derive_ratios_and_bound():
    def row(v, t, b, ms):
        return {"variant": v, "threads": t, "batch": b, "wall_ms": {"median": ms}}
    ms = {"fp32": 50.0, "fp32_folded": 42.0, "tcn": 39.0, "tcn_folded": 37.0, "rest": 25.0}
    rows = [row(v, 2, 64, m) for v, m in ms.items()] + [row("fp32", 2, 1, 1.0)]  # batch 1 incomplete
    (d,) = tcn_fold.derive(rows)
    assert (d["threads"], d["batch"]) == (2, 64)
    assert d["fold_gain_fp32"] == pytest.approx(50 / 42)
    assert d["fold_gain_int8"] == pytest.approx(39 / 37)
    assert d["tcn_vs_fp32"] == pytest.approx(50 / 39)
    assert d["tcn_folded_vs_fp32_folded"] == pytest.approx(42 / 37)
    assert d["best_int8_vs_best_fp32"] == pytest.approx(42 / 37)
    assert d["bound_vs_fp32"] == pytest.approx(2.0)
    assert d["bound_vs_fp32_folded"] == pytest.approx(42 / 25)
    assert d["rest_share_of_fp32"] == pytest.approx(0.5)
    assert (d["tcn_ms_fp32"], d["tcn_ms_int8"]) == pytest.approx((25.0, 14.0))
    assert (d["tcn_ms_fp32_folded"], d["tcn_ms_int8_folded"]) == pytest.approx((17.0, 12.0))
    assert d["tcn_ms_for_1_5x"] == pytest.approx(50 / 1.5 - 25)


def test_markdown_renders_every_row():
    rows = []
    for t in (1, 2):
        for b in (1, 64):
            for v, m in {"fp32": 10.0, "fp32_folded": 9.0, "tcn": 8.0, "tcn_folded": 7.5, "rest": 5.0}.items():
                rows.append({"variant": v, "threads": t, "batch": b, "wall_ms": {"median": m * b},
                             "buckets": {"kernel": m, "Transpose": 0.1, "act": 0.2, "attn": 0.3, "other": 0.4},
                             "conv_ms_by_stage": {"tcn": 1.0, "convs": 0.5}})
    doc = {"tool": "benchmarks/tcn_fold.py", "created": "2026-12-07T02:00:00+00:00", "checkpoint": "wiflow-half",
           "machine": {"cpu_model": "Test CPU", "cpu_count": 2, "cpu_flags": {"avx2": True, "avx512_vnni": False}},
           "versions": {"onnxruntime": "1.0"}, "note": "a note",
           "checks": {"windows": 37, "fp32_folded_vs_fp32_max_abs_diff": 3e-7, "tcn_folded_vs_tcn_max_abs_diff": 0.02},
           "variants": {v: {"description": d, "val_dpck20_pp": -0.1 if v.startswith("tcn") else None}
                        for v, d in tcn_fold.VARIANTS.items()},
           "runs": {"profile": {"rounds": 3, "undisturbed_rounds": 3}}, "profiles": rows, "derived": tcn_fold.derive(rows)}
    md = tcn_fold.to_markdown(doc)
    table = [ln for ln in md.splitlines() if ln.startswith("| 2 | 64 |")]
    assert table == ["| 2 | 64 | 640.000 | 576.000 | 512.000 | 480.000 | 320.000 | 1.11× | 1.07× | 1.25× | 1.20× | 2.00× |"]
    assert "fold gain int8 graph" in md
    assert "37 clean test windows" in md and "a note" in md and "avx2" in md
    assert md.count("| rest |") == 2  # in the graph list and the kernel table
