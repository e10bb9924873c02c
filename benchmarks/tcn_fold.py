"""How far can int8 take batch 64 at 2 threads? The float remainder's bound, and the TCN run as one image.

Issue 22 asks the default int8 export for 1.5× fp32 at batch 64 and 2 ONNX Runtime threads on a
VNNI/AMX box; the latency plans reach about 1.2×. This script measures, in one run on one box,
two things that decide how much more is possible:

* **the float remainder** (``rest``): the part of the network after the TCN (the 2-D stack, the
  axial attention, the decoder and the pooling) alone, as an fp32 graph. The plans the exporter
  makes on the AMX box keep that part float but for one to three of its groups (its int8 forms are
  slower there: the 2-D stack's 4-to-32-channel convolutions, ``docs/int8-threads.md``); a plan
  that keeps it all float cannot be faster than ``fp32 / rest`` — even with a TCN that costs nothing. The ``rest`` graph reads the first C′ of
  the C input channels as its ``[B, C′, T]`` input (a ``Slice`` of the same feed; timing only).
* **the TCN folded** (``*_folded``): the same function with the batch moved into an image axis.
  The TCN's convolutions only mix along time, so its ``[B, C, T]`` tensor can run as one
  ``[1, C, B, T]`` image through 2-D convolutions with ``(1, k)`` kernels (:func:`fold_tcn`); ONNX
  Runtime then runs one large convolution per layer instead of B small ones. Exact up to the order
  of float additions (checked on clean test windows, ``max_abs_diff``). Folding the 2-D stack too
  (``[1, W, B·T, F]``) was slower in a first try and is not part of this script.

Graphs: ``fp32`` (the exporter's), ``fp32_folded``, ``tcn`` and ``tcn_folded`` (every TCN
quantization group int8, the rest float — the int8 set the AMX box's plans are built around, made
by the exporter's ``QuantProbe`` from each fp32 graph with the same calibration windows), and
``rest``. Wall and per-op kernel time at 1 and 2 threads, batch 1 and 64, all sessions alive,
rotated rounds, disturbed rounds left out of the medians (``int8_threads.profile_run``).

    python benchmarks/tcn_fold.py --out benchmarks/results/tcn-fold-NAME.json
"""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import int8_threads as it
import int8_threads_lib as lib
import numpy as np
import torch
from common import inputs_for, parse_calls
from torch import nn

DEFAULTS = {"rounds": 7, "calls": "1=60,64=5"}
VARIANTS = {
    "fp32_folded": "the fp32 graph with the TCN run as one [1, C, B, T] image",
    "tcn": "the TCN's quantization groups int8, everything after it float",
    "tcn_folded": "the same int8 set on the folded graph",
    "rest": "fp32, only the network after the TCN (input: the first C' channels of the window)",
}


# --------------------------------------------------------------------------- exact rewrites


class _FoldedTCN(nn.Sequential):
    """A TCN whose blocks see the batch as the height of one image: ``[B, C, T] → [1, C, B, T]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(0, 1).unsqueeze(0)
        for block in self:
            x = block(x)
        return x.squeeze(0).transpose(0, 1)


def _as_2d(module: nn.Module) -> nn.Module:
    """The (1 × k) 2-D form of a 1-D conv, batch norm or left pad; other modules unchanged."""
    if isinstance(module, nn.Conv1d):
        if module.padding_mode != "zeros":
            raise ValueError(f"fold_tcn: a Conv1d with padding_mode={module.padding_mode!r} has no (1, k) twin here")
        new = nn.Conv2d(module.in_channels, module.out_channels, (1, module.kernel_size[0]),
                        stride=(1, module.stride[0]), padding=(0, module.padding[0]),
                        dilation=(1, module.dilation[0]), groups=module.groups, bias=module.bias is not None)
        with torch.no_grad():
            new.weight.copy_(module.weight.unsqueeze(2))
            if module.bias is not None:
                new.bias.copy_(module.bias)
        return new.train(module.training)
    if isinstance(module, nn.BatchNorm1d):
        new = nn.BatchNorm2d(module.num_features, eps=module.eps, momentum=module.momentum,
                             affine=module.affine, track_running_stats=module.track_running_stats)
        new.load_state_dict(module.state_dict())
        return new.train(module.training)
    if isinstance(module, nn.ConstantPad1d):
        left, right = module.padding
        return nn.ConstantPad2d((left, right, 0, 0), module.value)
    return module


def _swap_2d(module: nn.Module) -> None:
    for name, child in list(module.named_children()):
        new = _as_2d(child)
        if new is child:
            _swap_2d(child)
        else:
            setattr(module, name, new)


def fold_tcn(model: nn.Module) -> nn.Module:
    """A copy of a WiFlow-STD model whose TCN runs the batch as one image (same module names, same
    function). Only the TCN changes: every TCN op mixes along time or channels, never across windows."""
    out = copy.deepcopy(model)
    tcn = _FoldedTCN(*out.tcn)
    _swap_2d(tcn)
    out.tcn = tcn
    return out.train(model.training)  # the new containers and pads start in training mode


class AfterTCN(nn.Module):
    """The network after the TCN of ``model`` (same module names), fed ``x[:, :C']`` of a window."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        m = copy.deepcopy(model)
        self.cfg, self.width = m.cfg, m.cfg.tcn_channels[-1]
        self.convs, self.attn_w, self.attn_h, self.decoder, self.pool = m.convs, m.attn_w, m.attn_h, m.decoder, m.pool
        self.register_buffer("label_offset", m.label_offset.clone())
        self.register_buffer("label_scale", m.label_scale.clone())
        self.train(model.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, : self.width].transpose(1, 2).unsqueeze(1)
        x = self.attn_h(self.attn_w(self.convs(x).transpose(2, 3)))
        x = self.pool(self.decoder(x)).squeeze(-1).transpose(1, 2)
        return (x - self.cfg.head_shift) * self.label_scale + self.label_offset


# --------------------------------------------------------------------------- graphs


def max_abs_diff(a: Path, b: Path, x: np.ndarray) -> float:
    """Largest |Δ| between two graphs' outputs on ``x`` (batch 1, then all of ``x``)."""
    import onnxruntime as ort

    sa, sb = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (a, b))
    name = sa.get_inputs()[0].name
    return float(max(np.abs(sa.run(None, {name: xs})[0] - sb.run(None, {name: xs})[0]).max() for xs in (x[:1], x)))


def build(checkpoint: str, work: Path, log=print) -> tuple[dict[str, Path], dict[str, float], dict]:
    """The five graphs, each int8 graph's validation ΔPCK@20, and the exactness checks."""
    from edgepose.exporting import ExportRequest, load_context
    from edgepose.exporting.fold import fold_batchnorm
    from edgepose.exporting.onnx_fp32 import export_onnx

    work.mkdir(parents=True, exist_ok=True)
    ctx = load_context(ExportRequest(checkpoint=checkpoint, out=work, precision="int8", log=log), work)
    model = ctx.model.eval()
    paths = {"fp32": ctx.fp32_onnx(), "fp32_folded": work / "fp32_folded.onnx", "rest": work / "rest.onnx"}
    export_onnx(fold_batchnorm(fold_tcn(model)), paths["fp32_folded"], ctx.window_shape, ctx.req.opset)
    export_onnx(fold_batchnorm(AfterTCN(model)), paths["rest"], ctx.window_shape, ctx.req.opset)
    x, _ = ctx.parity_set()
    checks = {"fp32_folded_vs_fp32_max_abs_diff": max_abs_diff(paths["fp32"], paths["fp32_folded"], x),
              "windows": int(len(x))}
    val, int8_sets = {}, {}
    calib = ctx.calibration()
    for name, source in (("tcn", paths["fp32"]), ("tcn_folded", paths["fp32_folded"])):
        probe = ctx.probe(threads=2, calib=calib, source=source)
        paths[name] = work / f"{name}.onnx"
        int8_sets[name] = [g.name for g in probe.groups if g.name.startswith("tcn")]
        probe.build(int8_sets[name], paths[name])
        val[name] = probe.delta(probe.score(paths[name]))[0]
    if int8_sets["tcn"] != int8_sets["tcn_folded"]:  # the fold must keep the module scopes the groups come from
        raise RuntimeError(f"the folded graph's TCN groups differ: {int8_sets['tcn']} vs {int8_sets['tcn_folded']}")
    checks["int8_groups"] = int8_sets["tcn"]
    checks["tcn_folded_vs_tcn_max_abs_diff"] = max_abs_diff(paths["tcn"], paths["tcn_folded"], x)
    return {k: paths[k] for k in ("fp32", *VARIANTS)}, val, checks


# --------------------------------------------------------------------------- derived figures


def derive(rows: list[dict]) -> list[dict]:
    """Per (threads, batch): the fold's gain on fp32 and on int8, int8 vs each fp32, and the bound
    ``fp32 / rest`` on any plan that keeps the part after the TCN float."""
    wall = {(r["variant"], r["threads"], r["batch"]): r["wall_ms"]["median"] for r in rows}
    out = []
    for t, b in sorted({(r["threads"], r["batch"]) for r in rows}):
        w = {v: wall.get((v, t, b)) for v in ("fp32", *VARIANTS)}
        if None in w.values():
            continue
        best_fp32 = min(w["fp32"], w["fp32_folded"])
        out.append({"threads": t, "batch": b, "ms": w,
                    "fold_gain_fp32": w["fp32"] / w["fp32_folded"], "fold_gain_int8": w["tcn"] / w["tcn_folded"],
                    "tcn_vs_fp32": w["fp32"] / w["tcn"], "tcn_folded_vs_fp32_folded": w["fp32_folded"] / w["tcn_folded"],
                    "best_int8_vs_best_fp32": best_fp32 / min(w["tcn"], w["tcn_folded"]),
                    "rest_share_of_fp32": w["rest"] / w["fp32"], "bound_vs_fp32": w["fp32"] / w["rest"],
                    "bound_vs_fp32_folded": w["fp32_folded"] / w["rest"],
                    # the TCN's share of the wall time, as the difference to the float remainder
                    "tcn_ms_fp32": w["fp32"] - w["rest"], "tcn_ms_int8": w["tcn"] - w["rest"],
                    "tcn_ms_fp32_folded": w["fp32_folded"] - w["rest"], "tcn_ms_int8_folded": w["tcn_folded"] - w["rest"],
                    "tcn_ms_for_1_5x": w["fp32"] / 1.5 - w["rest"]})
    return out


def to_markdown(doc: dict) -> str:
    """The results as tables (rebuilt from the JSON by ``rebuild_reports.py``)."""
    m, run = doc["machine"], doc["runs"]["profile"]
    lines = [f"# The float remainder's bound and the folded TCN ({m.get('cpu_model', '?')}, {m.get('cpu_count', '?')} cores)",
             "", f"Generated by `{doc['tool']}` on {doc['created'][:10]} from `{doc['checkpoint']}`; ONNX Runtime "
             f"{doc['versions']['onnxruntime']}; CPU flags: {lib.flags_text(m.get('cpu_flags', {}))}; spinning off; "
             f"{run['undisturbed_rounds']} of {run['rounds']} rounds undisturbed (medians over those).", "",
             f"Exactness on {doc['checks']['windows']} clean test windows: folded vs plain fp32 max |Δ| "
             f"{doc['checks']['fp32_folded_vs_fp32_max_abs_diff']:.1e}; folded vs plain int8 `tcn` "
             f"{doc['checks']['tcn_folded_vs_tcn_max_abs_diff']:.1e} (the same int8 groups, each graph calibrated on the same "
             "windows; different int8 kernels).", "",
             "## Wall time (ms, median over rounds) and ratios", "",
             "| threads | batch | fp32 | fp32 folded | int8 tcn | int8 tcn folded | rest (float, after the TCN) | "
             "fold gain fp32 | fold gain int8 graph | tcn vs fp32 | folded: tcn vs fp32 | bound fp32 / rest |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in doc["derived"]:
        ms = d["ms"]
        lines.append(f"| {d['threads']} | {d['batch']} | {ms['fp32']:.3f} | {ms['fp32_folded']:.3f} | {ms['tcn']:.3f} | "
                     f"{ms['tcn_folded']:.3f} | {ms['rest']:.3f} | {d['fold_gain_fp32']:.2f}× | {d['fold_gain_int8']:.2f}× | "
                     f"{d['tcn_vs_fp32']:.2f}× | {d['tcn_folded_vs_fp32_folded']:.2f}× | {d['bound_vs_fp32']:.2f}× |")
    lines += ["", "## Graphs", "", "| graph | what | validation ΔPCK@20 |", "|---|---|---|",
              "| fp32 | the exporter's fp32 graph (batch norms folded) | – |"]
    for v, info in doc["variants"].items():
        dv = info.get("val_dpck20_pp")
        lines.append(f"| {v} | {info['description']} | {'–' if dv is None else f'{dv:+.2f} pp'} |")
    lines += ["", "## Kernel time at batch 64, 2 threads (ORT profiler, ms per call)", "",
              "| graph | kernel | TCN convs | 2-D stack convs | Transpose | act | attn | other |", "|---|---|---|---|---|---|---|---|"]
    for r in doc["profiles"]:
        if (r["threads"], r["batch"]) != (2, 64):
            continue
        bk, st = r["buckets"], r["conv_ms_by_stage"]
        lines.append(f"| {r['variant']} | {bk['kernel']:.2f} | {st.get('tcn', 0.0):.2f} | {st.get('convs', 0.0):.2f} | "
                     f"{bk.get('Transpose', 0.0):.2f} | {bk.get('act', 0.0):.2f} | {bk.get('attn', 0.0):.2f} | "
                     f"{bk.get('other', 0.0):.2f} |")
    if doc.get("note"):
        lines += ["", doc["note"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = it.variant_parser(__doc__.split("\n\n")[0], DEFAULTS)
    ap.add_argument("--threads", default="1,2")
    a = ap.parse_args(argv)
    import onnx

    from edgepose.zoo import resolve_dataset

    rec = it.machine_record()
    calls = parse_calls(a.calls)
    with tempfile.TemporaryDirectory(prefix="tcn-fold-") as tmp_s:
        tmp = Path(tmp_s)
        paths, val, checks = build(a.checkpoint, a.work or tmp / "graphs")
        counts, _, stages = it.graph_facts(paths, rec["output_alignment"], tmp)
        shape = tuple(d.dim_value for d in onnx.load(str(paths["fp32"])).graph.input[0].type.tensor_type.shape.dim[1:])
        feeds = inputs_for(sorted(calls), shape, resolve_dataset(a.checkpoint, None, "calibration"))
        rows, run_rec = it.profile_run(paths, [int(t) for t in a.threads.split(",")], feeds, a.rounds, calls, False,
                                       stages, tmp)
    doc = it.variant_header("benchmarks/tcn_fold.py", a, rec, run_rec) | {
        "checks": checks,
        "variants": {v: {"description": d, "val_dpck20_pp": val.get(v)} for v, d in VARIANTS.items()},
        "graph_counts": counts, "profiles": rows, "derived": derive(rows)}
    it.write_results(a.out, doc, to_markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
