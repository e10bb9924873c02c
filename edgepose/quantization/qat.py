"""int8 quantization-aware training with plain fake-quant ops, exported as QDQ ONNX.

The simulation mirrors the graph that ships, tensor for tensor: BatchNorm folded into conv
weights first; for every conv the recipe quantizes, a per-tensor fake-quant of its input,
symmetric per-channel fake-quant of its weight, int32 rounding of its bias (``ort-cpu``) and a
per-tensor fake-quant of its output (``ort-cpu``). Activation scales start from the PTQ
calibration of the same recipe and stay frozen; weight scales follow the weights
(``max|w| / qmax``) and are frozen at export, where :func:`insert_qdq` writes exactly these
numbers into the fp32 graph. No ``torch.ao.quantization`` is involved.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx
import torch
from onnx import TensorProto
from torch import nn

from edgepose.data.base import CSIDataset, SplitSpec
from edgepose.training.loss import PoseLoss
from edgepose.quantization.recipes import Recipe, conv_nodes_by_module
from edgepose.quantization.qdq import ConvQuant, read_activation_qparams
from edgepose.quantization.targets import Target


def _ste_round(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


class FakeQuantConv(nn.Module):
    """A folded conv whose input, weight, bias and output are fake-quantized as the QDQ graph does."""

    def __init__(self, conv: nn.Module, in_qp: tuple[float, int], out_qp: tuple[float, int] | None,
                 act_range: tuple[int, int], weight_qmax: int, quantize_bias: bool) -> None:
        super().__init__()
        self.conv = conv
        self.register_buffer("in_scale", torch.tensor(float(in_qp[0])))
        self.in_zp = int(in_qp[1])
        self.out_qp = None if out_qp is None else (float(out_qp[0]), int(out_qp[1]))
        self.qmin, self.qmax = act_range
        self.weight_qmax = weight_qmax
        self.quantize_bias = quantize_bias

    def weight_scales(self) -> torch.Tensor:
        w = self.conv.weight.detach()
        return (w.abs().amax(dim=tuple(range(1, w.ndim))) / self.weight_qmax).clamp_min(1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.fake_quantize_per_tensor_affine(x, float(self.in_scale), self.in_zp, self.qmin, self.qmax)
        s_w = self.weight_scales()
        w = torch.fake_quantize_per_channel_affine(
            self.conv.weight, s_w, torch.zeros_like(s_w, dtype=torch.int32), 0, -self.weight_qmax, self.weight_qmax)
        b = self.conv.bias
        if b is not None and self.quantize_bias:
            s_b = self.in_scale * s_w
            b = _ste_round(b / s_b) * s_b
        y = self.conv._conv_forward(x, w, b)
        if self.out_qp is not None:
            y = torch.fake_quantize_per_tensor_affine(y, self.out_qp[0], self.out_qp[1], self.qmin, self.qmax)
        return y


@dataclass
class QATModel:
    """The fake-quant model, its plain (folded, float) twin sharing weights, and the plan."""

    fake: nn.Module
    inner: nn.Module
    wrappers: dict[str, FakeQuantConv]

    def export_plan(self, fp32_proto: onnx.ModelProto, target: Target) -> dict[str, ConvQuant]:
        """Frozen Q/DQ parameters per ONNX Conv node of ``fp32_proto`` (an export of ``inner``)."""
        nodes = conv_nodes_by_module(fp32_proto)
        dtype = TensorProto.UINT8 if target.activation_qrange()[0] == 0 else TensorProto.INT8
        plan = {}
        for path, w in self.wrappers.items():
            plan[nodes[path]] = ConvQuant(
                input_scale=float(w.in_scale), input_zero_point=w.in_zp,
                weight_scales=w.weight_scales().cpu().numpy(), weight_qmax=w.weight_qmax,
                output_scale=None if w.out_qp is None else w.out_qp[0],
                output_zero_point=0 if w.out_qp is None else w.out_qp[1],
                quantize_bias=w.quantize_bias, activation_dtype=dtype)
        return plan


def build_qat_model(folded: nn.Module, fp32_proto: onnx.ModelProto, ptq_proto: onnx.ModelProto,
                    recipe: Recipe, target: Target) -> QATModel:
    """Wrap the recipe's convs of a folded model, initialising activation scales from PTQ."""
    inner = copy.deepcopy(folded).eval()
    qparams = read_activation_qparams(ptq_proto)
    nodes = {n.name: n for n in fp32_proto.graph.node}
    by_module = conv_nodes_by_module(fp32_proto)
    fake = _ShareTree(inner)  # same leaves as `inner`; wrappers replace convs in this tree only
    wrappers = {}
    for path, node_name in by_module.items():
        if recipe.keep_float(path):
            continue
        node = nodes[node_name]
        if node.input[0] not in qparams:
            raise RuntimeError(f"PTQ left the input of {path} float; cannot initialise QAT from it")
        out_qp = qparams.get(node.output[0]) if target.quantize_outputs else None
        conv = inner.get_submodule(path)
        wrapper = FakeQuantConv(conv, qparams[node.input[0]], out_qp, target.activation_qrange(),
                                target.weight_qmax(), target.quantize_bias)
        fake.replace(path, wrapper)
        wrappers[path] = wrapper
    return QATModel(fake.root, inner, wrappers)


class _ShareTree:
    """A structural copy of a module tree whose leaves are shared with the original."""

    def __init__(self, model: nn.Module) -> None:
        self.root = self._copy(model)

    def _copy(self, m: nn.Module) -> nn.Module:
        if not m._modules:
            return m
        clone = copy.copy(m)
        clone._modules = {k: self._copy(v) if v is not None else None for k, v in m._modules.items()}
        return clone

    def replace(self, path: str, new: nn.Module) -> None:
        parent_path, _, name = path.rpartition(".")
        parent = self.root.get_submodule(parent_path) if parent_path else self.root
        parent._modules[name] = new


#: What the fake-quant model is fitted to: the labels, or the fp32 model's own outputs.
QAT_LOSSES = ("labels", "distill")
#: How the epoch to keep is chosen on validation: closeness to the fp32 model's outputs, or PCK@20 on the labels.
QAT_SELECTIONS = ("fidelity", "pck20")
#: Learning-rate schedule over the whole fine-tune: constant, or a per-step cosine decay to zero.
QAT_SCHEDULES = ("constant", "cosine")


def finetune(qat: QATModel, ds: CSIDataset, spec: SplitSpec, epochs: int = 2, lr: float = 2e-5,
             batch_size: int = 64, seed: int = 0, max_windows: int | None = None, loss: str = "labels",
             teacher: nn.Module | None = None, device: str = "cpu", select: str = "fidelity",
             schedule: str = "constant", log: Callable[[str], None] = print) -> list[dict]:
    """Fine-tune the fake-quant model on clean training windows (BN folded, dropout off).

    ``loss``: ``labels`` fits the pose loss to the labels; ``distill`` fits the fake-quant model's
    outputs to ``teacher``'s (the fp32 model) with the same loss, so fine-tuning pulls the int8
    simulation back towards the fp32 function instead of away from the fp32 optimum.
    The fake-quant model is scored on the clean validation split before fine-tuning and after
    each epoch, and one epoch's weights are kept (the PTQ-initialised start included):
    ``select="fidelity"`` keeps the one whose outputs are closest to ``teacher``'s (mean joint
    distance; it does not depend on label noise, which on a validation split of a dozen
    recordings moves PCK@20 by about a point), ``"pck20"`` the highest PCK@20 (ties: MPJPE).
    ``device``: where to train (``cpu`` or ``cuda``); the model is back on the CPU afterwards.
    ``schedule``: ``constant`` keeps ``lr``; ``cosine`` decays it per step towards zero over all steps,
    so late epochs move the weights less and adjacent epochs differ less.
    """
    from edgepose.evaluation import score
    from edgepose.metrics import pck_at

    if loss not in QAT_LOSSES:
        raise ValueError(f"unknown QAT loss {loss!r}; choose from {', '.join(QAT_LOSSES)}")
    if select not in QAT_SELECTIONS:
        raise ValueError(f"unknown QAT selection {select!r}; choose from {', '.join(QAT_SELECTIONS)}")
    if schedule not in QAT_SCHEDULES:
        raise ValueError(f"unknown QAT schedule {schedule!r}; choose from {', '.join(QAT_SCHEDULES)}")
    if (loss == "distill" or select == "fidelity") and teacher is None:
        raise ValueError(f"loss {loss!r} with selection {select!r} needs the fp32 teacher model")
    dev = torch.device(device)
    torch.manual_seed(seed)
    model = qat.fake.to(dev).eval()  # eval: folded convs have no BN; attention BNs keep running stats
    if teacher is not None:
        teacher = teacher.to(dev).eval()
    loss_fn = PoseLoss(ds.layout).to(dev)
    params = [p for p in qat.inner.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    idx_all = ds.indices("train", clean=True, spec=spec)
    val_idx = ds.indices("val", clean=True, spec=spec)

    @torch.no_grad()
    def predict(x: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(np.ascontiguousarray(x)).to(dev)).float().cpu().numpy()

    val_x, _ = ds.read(val_idx)

    def outputs(net: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        return np.concatenate([net(val_x[i : i + 256]) for i in range(0, len(val_x), 256)])

    with torch.no_grad():
        ref = None if teacher is None or not len(val_x) else outputs(
            lambda x: teacher(torch.from_numpy(x).to(dev)).float().cpu().numpy())

    def validate() -> dict:
        s = score(predict, ds, val_idx)
        out = {"val_pck20": pck_at(s["pck"], 0.2), "val_mpjpe": s["mpjpe"]}
        if teacher is not None:  # mean joint distance to the fp32 model's outputs (NaN: no validation windows)
            out["val_fidelity"] = (float(np.linalg.norm(outputs(predict) - ref, axis=-1).mean())
                                   if ref is not None else float("nan"))
        return out

    def key(v: dict) -> tuple[float, float]:
        if select == "fidelity":
            return (-round(v["val_fidelity"], 12), round(v["val_pck20"], 9))
        return (round(v["val_pck20"], 9), -v["val_mpjpe"])

    per_epoch = len(idx_all) if not max_windows else min(len(idx_all), max_windows)
    total_steps = max(1, epochs * -(-per_epoch // batch_size))
    sched = (torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1.0 + np.cos(np.pi * min(k, total_steps) / total_steps)))
             if schedule == "cosine" else None)
    v0 = validate()
    if not len(val_idx):
        log("  QAT: no clean validation windows to choose an epoch on; the PTQ start is kept")
    best = (v0, 0, copy.deepcopy(qat.inner.state_dict()))
    history = [{"epoch": 0, **v0}]
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(idx_all)
        if max_windows:
            order = order[:max_windows]
        total = 0.0
        for i in range(0, len(order), batch_size):
            b = np.sort(order[i : i + batch_size])
            x, y = ds.read(b)
            xt = torch.from_numpy(x).to(dev)
            if loss == "distill":
                with torch.no_grad():
                    target = teacher(xt)
            else:
                target = torch.from_numpy(y).to(dev)
            value = loss_fn(model(xt), target)
            opt.zero_grad(set_to_none=True)
            value.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            if sched is not None:
                sched.step()
            total += float(value.detach()) * len(b)
        v = validate()
        history.append({"epoch": epoch + 1, "loss": total / max(len(order), 1), **v})
        fid = f"  fidelity {v['val_fidelity']:.5f}" if "val_fidelity" in v else ""
        log(f"  QAT epoch {epoch + 1}/{epochs}: {loss} loss {history[-1]['loss']:.5f}  val PCK@20 "
            f"{100 * v['val_pck20']:.2f} %  MPJPE {v['val_mpjpe']:.5f}{fid}")
        if key(v) > key(best[0]):
            best = (v, epoch + 1, copy.deepcopy(qat.inner.state_dict()))
    qat.inner.load_state_dict(best[2])
    model.cpu()
    if teacher is not None:
        teacher.cpu()
    for h in history:
        h["kept"] = h["epoch"] == best[1]
    log(f"  QAT keeps epoch {best[1]} by {select} (val PCK@20 {100 * best[0]['val_pck20']:.2f} %, "
        f"MPJPE {best[0]['val_mpjpe']:.5f})")
    return history


__all__ = ["FakeQuantConv", "QATModel", "QAT_LOSSES", "QAT_SCHEDULES", "QAT_SELECTIONS", "build_qat_model", "finetune"]
