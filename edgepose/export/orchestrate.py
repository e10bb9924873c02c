"""Orchestration of one export request: load the checkpoint, build the artifacts, gate, write atomically.

One entry point, :func:`export`, dispatches through :data:`PRECISIONS` (a registry, not an
if-chain). Every artifact is written beside a JSON card and moved into the output folder only
when complete; a failure leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import torch

from ..data import SplitSpec, open_dataset
from ..data.base import CSIDataset
from ..errors import EdgeposeError
from ..interrupt import terminate_as_interrupt
from ..evaluate import torch_predictor
from ..train.checkpoint import load_checkpoint
from .calibration import CalibrationSet
from .card import write_card
from .fold import fold_batchnorm
from .fp16 import DEFAULT_BLOCK_LIST, convert_fp16
from .onnx_fp32 import DEFAULT_OPSET, export_onnx
from .parity import ort_predict, ort_session, parity
from .plan import get_recipe
from .calibrators import CALIBRATORS
from .ptq import quantize_ptq
from .targets import TARGETS, get_target
from .tensorrt import build_engine, check_tensorrt_qdq, tensorrt_available

METHODS = ("ptq", "qat")


@dataclass
class ExportRequest:
    """Everything ``edgepose export`` takes."""

    checkpoint: Path
    out: Path
    precision: str = "fp32"
    method: str | None = None
    calib: str = "percentile"
    target: str = "ort-cpu"
    recipe: str = "safe"
    engine: bool = False
    data: Path | None = None
    calib_count: int = 512
    calib_seed: int = 0
    qat_epochs: int = 2
    qat_lr: float = 3e-5
    qat_max_windows: int | None = None
    qat_loss: str = "distill"
    qat_select: str = "fidelity"
    qat_schedule: str = "constant"
    qat_device: str = "cpu"
    opset: int = DEFAULT_OPSET
    keep_io_types: bool = True
    fp16_block_list: tuple[str, ...] = DEFAULT_BLOCK_LIST
    parity_windows: int = 512
    max_drop: float | None = None
    best_effort: bool = False
    guard_val_windows: int | None = None
    guard_criterion: str = "point"
    guard_strategy: str = "linear"
    objective: str | None = None
    batches: tuple[int, ...] = (1, 64)
    threads: int = 0
    runtime: str = "onnxruntime"
    search_minutes: float = 10.0
    timing_seconds: float = 0.8
    profile_cache: bool = True
    log: Callable[[str], None] = field(default=print, repr=False)


@dataclass
class _Context:
    req: ExportRequest
    model: torch.nn.Module
    card: dict
    work: Path
    _ds: CSIDataset | None = None
    _fp32: Path | None = None

    @property
    def name(self) -> str:
        return self.card["model"]

    @property
    def window_shape(self) -> tuple[int, int]:
        return (self.model.cfg.in_channels, self.model.cfg.window)

    @property
    def spec(self) -> SplitSpec:
        s = self.card.get("split", {})
        return SplitSpec(s.get("seed", 42), tuple(s.get("fractions", (0.7, 0.15, 0.15))))

    @property
    def dataset(self) -> CSIDataset:
        if self._ds is None:
            from ..zoo import resolve_dataset

            # calibration and the parity gate tolerate other data (with a warning); a missing
            # dataset is named by its fingerprint, or regenerated when it is the synthetic default
            path = resolve_dataset(self.card, self.req.data, "calibration")
            self._ds = open_dataset(path)
            if tuple(self._ds.window_shape) != self.window_shape:
                raise EdgeposeError(f"dataset windows are {self._ds.window_shape}, the checkpoint expects "
                                    f"{self.window_shape}", path)
        return self._ds

    def parity_set(self) -> tuple[np.ndarray, np.ndarray]:
        ds = self.dataset
        idx = ds.indices("test", clean=True, spec=self.spec)
        idx = idx[np.linspace(0, len(idx) - 1, num=min(len(idx), self.req.parity_windows)).astype(np.int64)]
        return ds.read(np.unique(idx))

    def fp32_onnx(self) -> Path:
        if self._fp32 is None:
            self._fp32 = self.work / f"{self.name}.fp32.onnx"
            export_onnx(fold_batchnorm(self.model), self._fp32, self.window_shape, self.req.opset)
        return self._fp32

    def base_card(self, precision: str) -> dict:
        return {"precision": precision, "model": self.name, "param_count": self.card.get("param_count"),
                "window_shape": list(self.window_shape), "joints": self.model.cfg.joints,
                "layout": self.card.get("layout"), "opset": self.req.opset,
                "input": {"name": "csi", "shape": ["batch", *self.window_shape], "dtype": "float32"},
                "output": {"name": "keypoints", "shape": ["batch", self.model.cfg.joints, 2], "units": "pixel/1000"},
                "parent": {"checkpoint": str(Path(self.req.checkpoint).resolve()), "weights_sha256": self.card.get("weights_sha256"),
                           "dataset_fingerprint": self.card.get("dataset", {}).get("fingerprint"),
                           "split_fingerprint": self.card.get("split", {}).get("fingerprint")}}

    def torch_reference(self, x: np.ndarray) -> np.ndarray:
        return torch_predictor(self.model)(x)

    def calibration(self) -> CalibrationSet:
        calib = CalibrationSet.from_dataset(self.dataset, self.req.calib_count, self.req.calib_seed, self.spec,
                                            self.window_shape)
        if calib.short:
            self.req.log(f"note: {calib.describe()['note']}")
        return calib

    def probe(self, val_windows: int | None = None, threads: int = 2, calib: CalibrationSet | None = None):
        """A quantization probe over this checkpoint's fp32 graph, scored on clean validation windows."""
        from ..analyze.probe import Probe
        from ..analyze.sensitivity import spaced
        from .groups import leaf_module_paths, quant_groups

        ds = self.dataset
        idx = spaced(ds.indices("val", clean=True, spec=self.spec), val_windows)
        if not len(idx):
            raise EdgeposeError("no clean validation windows to measure int8 accuracy on", ds.path)
        x, y = ds.read(idx)
        target = get_target(self.req.target)
        groups = quant_groups(onnx.load(str(self.fp32_onnx())), target, leaf_module_paths(self.model))
        calib = calib or self.calibration()
        return Probe.calibrate(self.fp32_onnx(), groups, target, self.req.calib, calib.windows, x, y,
                               ds.layout.torso, self.work / "probe", threads=threads,
                               recordings=np.asarray(ds.window_file)[idx])


def _export_fp32(ctx: _Context) -> list[Path]:
    path = ctx.work / "artifact" / ctx.fp32_onnx().name
    path.parent.mkdir(exist_ok=True)
    shutil.copyfile(ctx.fp32_onnx(), path)
    x, y = ctx.parity_set()
    rand = np.random.default_rng(0).uniform(0, 1, (64, *ctx.window_shape)).astype(np.float32)
    sess = ort_session(path)
    ref_x, ref_r = ctx.torch_reference(x), ctx.torch_reference(rand)
    real = parity(ref_x, ort_predict(sess, x), y, ctx.dataset.layout.torso)
    rnd = parity(ref_r, ort_predict(sess, rand))
    # float32 rounding grows with the output's magnitude: the gate is 1e-4 of max(1, max |output|)
    scale = max(1.0, float(np.abs(ref_x).max(initial=0.0)), float(np.abs(ref_r).max(initial=0.0)))
    worst = max(real["max_abs_error"], rnd["max_abs_error"])
    real["gate"] = rnd["gate"] = 1e-4 * scale
    if worst > 1e-4 * scale:
        raise EdgeposeError(f"fp32 ONNX disagrees with torch (max abs error {worst:.2e} > {1e-4 * scale:.2e} "
                            f"= 1e-4 × max(1, max |output| {scale:.3g}))")
    write_card(path, {**ctx.base_card("fp32"), "method": "export", "recipe": {"batchnorm": "folded into convs",
               "dynamic_batch": True}, "parity": {"test_windows": real, "random_windows": rnd}})
    return [path]


def _export_fp16(ctx: _Context) -> list[Path]:
    path = ctx.work / f"{ctx.name}.fp16.onnx"
    params = convert_fp16(ctx.fp32_onnx(), path, ctx.req.keep_io_types, ctx.req.fp16_block_list)
    x, y = ctx.parity_set()
    par = parity(ctx.torch_reference(x), ort_predict(ort_session(path), x), y, ctx.dataset.layout.torso)
    write_card(path, {**ctx.base_card("fp16"), "method": "convert", "recipe": params, "parity": {"test_windows": par}})
    return [path]


def _export_int8(ctx: _Context) -> list[Path]:
    req = ctx.req
    method = req.method or "ptq"
    if method not in METHODS:
        raise EdgeposeError(f"unknown int8 method {method!r}; choose from {', '.join(METHODS)}")
    if req.objective is not None:
        from .planned import export_planned

        return [export_planned(ctx)]
    if req.max_drop is not None:
        if method != "ptq":
            raise EdgeposeError(f"--max-drop searches PTQ configurations; it does not apply to --method {method}")
        return [_guarded(ctx)]
    target, recipe = get_target(req.target), get_recipe(req.recipe)
    if recipe.quantize_all_ops and target.name == "tensorrt":
        raise EdgeposeError("recipe 'global' is for the ort-cpu target only (TensorRT places Q/DQ on the "
                            "inputs of weighted ops)")
    calib = ctx.calibration()
    tag = f"int8-ptq-{req.calib}-{recipe.name}-{target.name}"
    ptq_path = ctx.work / f"{ctx.name}.{tag}.onnx"
    params = quantize_ptq(ctx.fp32_onnx(), ptq_path, calib, recipe, target, req.calib)
    x, y = ctx.parity_set()
    torso = ctx.dataset.layout.torso
    ref = ctx.torch_reference(x)
    if method == "ptq":
        par = parity(ref, ort_predict(ort_session(ptq_path), x), y, torso)
        card = {**ctx.base_card("int8"), "method": "ptq", "target": target.name, "recipe": params,
                "calibration": calib.describe(), "parity": {"vs_fp32_torch": par}}
        if target.name == "tensorrt":
            card["tensorrt_qdq_problems"] = check_tensorrt_qdq(onnx.load(str(ptq_path)))
        write_card(ptq_path, card)
        return [ptq_path]
    return [_qat(ctx, ptq_path, calib, params, recipe, target, x, y, ref)]


def _qat(ctx, ptq_path, calib, params, recipe, target, x, y, ref) -> Path:
    """Fine-tune a fake-quant simulation of the PTQ graph and export it as QDQ ONNX.

    Recipes that quantize only convolutions use the conv-level simulation over torch modules
    (:mod:`edgepose.export.qat`); recipes that quantize every op (``global``) put Q/DQ pairs on
    tensors with no torch module, so they are fine-tuned on the PTQ graph itself, interpreted in
    torch (:mod:`edgepose.export.qat_graph`).
    """
    from .qat import build_qat_model, finetune

    req = ctx.req
    folded = fold_batchnorm(ctx.model)
    fp32_proto, ptq_proto = onnx.load(str(ctx.fp32_onnx())), onnx.load(str(ptq_path))
    if recipe.quantize_all_ops:
        from .qat_graph import build_graph_qat

        qat = build_graph_qat(ptq_proto, fp32_proto, {n for n, _ in folded.named_parameters()})
        counts = qat.count()
        what = (f"the PTQ graph ({counts['activations']} activation, {counts['weights']} weight and "
                f"{counts['biases']} bias fake-quants)")
        simulation = {"simulation": "graph", **counts}
    else:
        qat = build_qat_model(folded, fp32_proto, ptq_proto, recipe, target)
        what = f"{len(qat.wrappers)} fake-quant convs"
        simulation = {"simulation": "modules", "convs": len(qat.wrappers)}
    with torch.no_grad():
        before = torch_predictor(qat.fake)(x)
    req.log(f"QAT: fine-tuning {what} for {req.qat_epochs} epoch(s), lr {req.qat_lr}, "
            f"loss {req.qat_loss}, on {req.qat_device}")
    history = finetune(qat, ctx.dataset, ctx.spec, req.qat_epochs, req.qat_lr, seed=req.calib_seed,
                       max_windows=req.qat_max_windows, loss=req.qat_loss, teacher=fold_batchnorm(ctx.model),
                       device=req.qat_device, select=req.qat_select, schedule=req.qat_schedule, log=req.log)
    if recipe.quantize_all_ops:
        qdq = qat.to_qdq()
    else:
        from .qdq import insert_qdq

        fp32_tuned = ctx.work / "qat-float.onnx"
        export_onnx(qat.inner, fp32_tuned, ctx.window_shape, req.opset)
        proto = onnx.load(str(fp32_tuned))
        qdq = insert_qdq(proto, qat.export_plan(proto, target))
    path = ctx.work / f"{ctx.name}.int8-qat-{recipe.name}-{target.name}.onnx"
    onnx.save(qdq, str(path))
    with torch.no_grad():
        fake = torch_predictor(qat.fake)(x)
    shipped = ort_predict(ort_session(path), x)
    torso = ctx.dataset.layout.torso
    gate = parity(fake, shipped, y, torso)
    card = {**ctx.base_card("int8"), "method": "qat", "target": target.name,
            "recipe": {**params, "calibrator_init": req.calib, "qat_epochs": req.qat_epochs, "qat_lr": req.qat_lr,
                       "qat_loss": req.qat_loss, "qat_schedule": req.qat_schedule, "selection": f"validation {req.qat_select}, start included",
                       "activation_scales": "frozen from PTQ calibration",
                       "weight_scales": "max|w|/qmax, frozen at export" + (
                           "; other quantized constants on their frozen PTQ grid" if recipe.quantize_all_ops else ""),
                       **simulation},
            "calibration": calib.describe(), "history": history,
            "parity": {"fake_quant_vs_onnx_int8": gate, "vs_fp32_torch": parity(ref, shipped, y, torso),
                       "fake_quant_before_finetune_vs_fp32": parity(ref, before, y, torso)}}
    if target.name == "tensorrt":
        card["tensorrt_qdq_problems"] = check_tensorrt_qdq(qdq)
    write_card(path, card)
    return path


def test_delta(ctx: _Context, path: Path, threads: int = 2) -> dict:
    """The chosen graph against the fp32 ONNX on the whole clean test split (test only reports)."""
    from ..evaluate import score
    from ..metrics import pck_at

    ds = ctx.dataset
    test_idx = ds.indices("test", clean=True, spec=ctx.spec)
    scores = {}
    for key, graph in (("fp32", ctx.fp32_onnx()), ("int8", path)):
        sess = ort_session(graph, threads=threads)
        scores[key] = score(lambda x, s=sess: ort_predict(s, x), ds, test_idx)
    test = {"windows": int(len(test_idx)), "fp32_pck20": pck_at(scores["fp32"]["pck"], 0.2),
            "int8_pck20": pck_at(scores["int8"]["pck"], 0.2)}
    test["delta_pck20_pp"] = 100.0 * (test["int8_pck20"] - test["fp32_pck20"])
    test["delta_mpjpe"] = scores["int8"]["mpjpe"] - scores["fp32"]["mpjpe"]
    return test


def _guarded(ctx: _Context) -> Path:
    """int8 PTQ under the accuracy guard (``--max-drop``): see :mod:`edgepose.export.guard`."""
    from ..analyze.sensitivity import measure_groups
    from .guard import guard_search
    from .ptq import scheme_params

    req = ctx.req
    calib = ctx.calibration()
    probe = ctx.probe(val_windows=req.guard_val_windows, calib=calib)
    req.log(f"guard: {len(probe.groups)} groups on {len(probe.x)} clean validation windows "
            f"(fp32 PCK@20 {100 * probe.reference.pck20:.2f} %), budget −{req.max_drop} pp")
    records: list = []

    def scan() -> list:
        records.extend(measure_groups(probe, req.log, sqnr=False))
        return records

    result = guard_search(probe, scan, req.max_drop, req.log, criterion=req.guard_criterion,
                          strategy=req.guard_strategy)
    if not result.met and not req.best_effort:
        raise EdgeposeError(f"{result.notes[0]}; nothing written (pass --best-effort to write the closest)",
                            req.checkpoint)
    for note in result.notes:
        req.log(f"best effort: {note}")
    tag = f"int8-ptq-{req.calib}-guard{req.max_drop:g}pp-{probe.target.name}"
    path = probe.build(result.int8_groups, ctx.work / f"{ctx.name}.{tag}.onnx")
    test = test_delta(ctx, path, probe.threads)
    guard = {**result.to_dict(), "best_effort": bool(req.best_effort and not result.met),
             "validation": {**result.to_dict()["validation"], "windows": int(len(probe.x)),
                            "fp32_pck20": probe.reference.pck20},
             "test": test, "groups": [g.to_dict() for g in probe.groups],
             "sensitivity": [{"name": r.name, "delta_pck20_pp": r.delta_pck20_pp, "delta_mpjpe": r.delta_mpjpe}
                             for r in records]}
    x, y = ctx.parity_set()
    par = parity(ctx.torch_reference(x), ort_predict(ort_session(path), x), y, ctx.dataset.layout.torso)
    card = {**ctx.base_card("int8"), "method": "ptq", "target": probe.target.name,
            "recipe": {**scheme_params(probe.target, req.calib), "recipe": "guard",
                       "float_groups": result.float_groups, "int8_groups": len(result.int8_groups)},
            "calibration": calib.describe(), "guard": guard, "parity": {"vs_fp32_torch": par}}
    if probe.target.name == "tensorrt":
        card["tensorrt_qdq_problems"] = check_tensorrt_qdq(onnx.load(str(path)))
    write_card(path, card)
    req.log(f"guard: {'within' if result.met else 'OUTSIDE'} budget — {len(result.float_groups)} group(s) float, "
            f"validation ΔPCK@20 {result.choice.delta_pck20_pp:+.2f} pp, test "
            f"{test.get('delta_pck20_pp', float('nan')):+.2f} pp")
    return path


#: precision → exporter. Each returns the artifact paths it wrote into the work folder.
PRECISIONS: dict[str, Callable[[_Context], list[Path]]] = {
    "fp32": _export_fp32,
    "fp16": _export_fp16,
    "int8": _export_int8,
}


def _validate(req: ExportRequest) -> None:
    if req.precision not in PRECISIONS:
        raise EdgeposeError(f"unknown precision {req.precision!r}; choose from {', '.join(PRECISIONS)}")
    if req.precision != "int8" and req.method:
        raise EdgeposeError(f"--method {req.method} applies to int8 only, not {req.precision}")
    if req.calib not in CALIBRATORS:
        raise EdgeposeError(f"unknown calibrator {req.calib!r}; choose from {', '.join(CALIBRATORS)}")
    if req.target not in TARGETS:
        raise EdgeposeError(f"unknown target {req.target!r}; choose from {', '.join(TARGETS)}")
    from .qat import QAT_LOSSES, QAT_SCHEDULES, QAT_SELECTIONS

    if req.qat_loss not in QAT_LOSSES:
        raise EdgeposeError(f"unknown QAT loss {req.qat_loss!r}; choose from {', '.join(QAT_LOSSES)}")
    if req.qat_select not in QAT_SELECTIONS:
        raise EdgeposeError(f"unknown QAT selection {req.qat_select!r}; choose from {', '.join(QAT_SELECTIONS)}")
    if req.qat_schedule not in QAT_SCHEDULES:
        raise EdgeposeError(f"unknown QAT schedule {req.qat_schedule!r}; choose from {', '.join(QAT_SCHEDULES)}")
    if req.qat_device == "cuda" and not torch.cuda.is_available():
        raise EdgeposeError("--qat-device cuda: no CUDA GPU visible to torch")
    if req.engine and req.precision == "fp32":
        raise EdgeposeError("TensorRT engines are built from fp16 or int8 ONNX (strongly typed networks); "
                            "use --precision fp16 or int8")
    if req.engine and req.precision == "int8" and req.target != "tensorrt":
        raise EdgeposeError("an int8 engine needs the TensorRT QDQ layout: add --target tensorrt")
    if req.max_drop is not None:
        if req.precision != "int8":
            raise EdgeposeError(f"--max-drop guards int8 accuracy; it does not apply to {req.precision}")
        if not (req.max_drop >= 0):
            raise EdgeposeError(f"--max-drop is the largest allowed PCK@20 drop in percentage points (≥ 0), "
                                f"got {req.max_drop}")
    from .planned import validate as validate_plan

    validate_plan(req)
    from .guard import CRITERIA, STRATEGIES

    if req.guard_criterion not in CRITERIA:
        raise EdgeposeError(f"unknown guard criterion {req.guard_criterion!r}; choose from {', '.join(CRITERIA)}")
    if req.guard_strategy not in STRATEGIES:
        raise EdgeposeError(f"unknown guard strategy {req.guard_strategy!r}; choose from {', '.join(STRATEGIES)}")
    if req.best_effort and (req.max_drop is None or req.objective is not None):
        raise EdgeposeError("--best-effort applies to the accuracy guard alone: add --max-drop PP "
                            "(an --objective plan is never outside its budget: it falls back to float)")
    if req.engine:
        ok, reason = tensorrt_available()
        if not ok:
            raise EdgeposeError(reason)


def load_context(req: ExportRequest, work: Path) -> _Context:
    """Resolve and load ``req.checkpoint`` into an export context working in ``work``."""
    from ..zoo import resolve_checkpoint

    req.checkpoint = resolve_checkpoint(req.checkpoint)
    model, card = load_checkpoint(req.checkpoint)
    return _Context(req, model, card, work)


def export(req: ExportRequest) -> list[Path]:
    """Run one export request; returns the final artifact paths in ``req.out``."""
    from ..zoo import resolve_checkpoint

    _validate(req)
    req.checkpoint = resolve_checkpoint(req.checkpoint)
    model, card = load_checkpoint(req.checkpoint)
    req.out.mkdir(parents=True, exist_ok=True)
    with terminate_as_interrupt():  # SIGTERM unwinds like Ctrl-C: the work folder is removed
        return _export_into(req, model, card)


def _export_into(req: ExportRequest, model: torch.nn.Module, card: dict) -> list[Path]:
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=req.out))
    try:
        ctx = _Context(req, model, card, work)
        paths = PRECISIONS[req.precision](ctx)
        if req.engine:
            plan = paths[0].with_suffix(".plan")
            info = build_engine(paths[0], plan, ctx.window_shape)
            write_card(plan, {**ctx.base_card(req.precision), "method": "tensorrt-engine",
                              "source_onnx": paths[0].name, "recipe": info})
            paths.append(plan)
        final = []
        for p in paths:
            for f in (p, p.with_name(p.name + ".json")):
                os.replace(f, req.out / f.name)
            final.append(req.out / p.name)
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)
