"""What one export is asked to make: :class:`ExportRequest`, and :func:`validate` of its options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from edgepose.errors import EdgeposeError
from edgepose.exporting.onnx_fp32 import DEFAULT_OPSET
from edgepose.exporting.fp16 import DEFAULT_BLOCK_LIST
from edgepose.exporting.tensorrt import tensorrt_available
from edgepose.quantization.calibrators import CALIBRATORS
from edgepose.quantization.guard import CRITERIA, STRATEGIES
from edgepose.quantization.qat import QAT_LOSSES, QAT_SCHEDULES, QAT_SELECTIONS
from edgepose.quantization.targets import DEFAULT_WEIGHT_BITS, TARGETS, check_weight_bits
from edgepose.runtime.parallel import DEFAULT_PARALLEL, PARALLEL_MODES

#: int8 methods: post-training quantization, quantization-aware fine-tuning
METHODS = ("ptq", "qat")
#: ``--objective`` values of the per-layer precision plan
OBJECTIVES = ("latency", "size")


@dataclass
class ExportRequest:
    """Everything ``edgepose export`` takes (and ``ep.export(**options)``), flat as the CLI's options.

    Groups of fields: what to make (``precision``, ``method``, ``calib``, ``target``, ``recipe``,
    ``engine``); data (``data``, ``calib_count``, ``calib_seed``, ``parity_windows``); QAT
    (``qat_*``); the accuracy guard (``max_drop``, ``best_effort``, ``guard_*``); the precision
    plan (``objective``, ``batches``, ``threads``, ``parallel``, ``runtime``, ``search_minutes``,
    ``timing_seconds``, ``profile_cache``); ``pad_channels`` (int8 PTQ from a graph whose TCN widths
    are padded to multiples of 4, the same function: :mod:`edgepose.models.padding`); ``bias_correction``
    (``off``, ``on`` or ``checked``: a module recipe's PTQ graph with its convolutions' fp32 output
    means restored, ``checked`` only when validation PCK@20 is higher: :mod:`edgepose.exporting.corrected`);
    ``range_search`` (``on``, ``off`` or ``None``, the default: ``on`` for a module recipe's PTQ export, where
    every activation range is searched against the network output, ``off`` for the accuracy guard:
    :mod:`edgepose.quantization.range_search`); ONNX (``opset``, ``keep_io_types``,
    ``fp16_block_list``). :func:`validate` checks them against the registries.
    """

    checkpoint: Path
    out: Path
    precision: str = "fp32"
    method: str | None = None
    calib: str = "percentile"
    target: str = "ort-cpu"
    weight_bits: str = DEFAULT_WEIGHT_BITS
    recipe: str = "auto"
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
    parallel: str = DEFAULT_PARALLEL
    runtime: str = "onnxruntime"
    search_minutes: float = 4.0
    search: str = "blocks"
    timing_seconds: float = 0.8
    profile_cache: bool = True
    pad_channels: bool = False
    bias_correction: str = "off"
    range_search: str | None = None
    log: Callable[[str], None] = field(default=print, repr=False)


#: ``--bias-correction``: ``on`` ships the corrected graph, ``checked`` only when it scores higher on validation
#: (:mod:`edgepose.exporting.corrected`)
BIAS_CORRECTION_MODES = ("off", "on", "checked")
#: ``--range-search``: ``on`` searches every activation range of a module recipe's PTQ graph against the
#: network output (:mod:`edgepose.quantization.range_search`); left unset, it is on wherever it applies
RANGE_SEARCH_MODES = ("off", "on")


#: ``--range-search`` left unset: for a module recipe's PTQ export, and for the accuracy guard (``--max-drop``)
#: (the guard's is off: factors searched with every group int8 made it restore 50 of 57 groups on wiflow-half, where
#: the calibrated ranges needed 10; docs/quantization.md)
RANGE_SEARCH_DEFAULT = {"recipe": "on", "guard": "off"}


def range_search_mode(req: ExportRequest, recipe_name: str | None) -> str:
    """Whether the PTQ graph of module recipe ``recipe_name`` (``None``: the accuracy guard's graphs) gets its
    ranges searched: the request's ``range_search``, or :data:`RANGE_SEARCH_DEFAULT` when it is unset (QAT
    keeps the PTQ scales frozen, and recipes that choose by groups or timing are not searched: ``off``)."""
    from edgepose.quantization.recipes import module_recipes

    if (req.method or "ptq") != "ptq":
        return "off"
    if recipe_name is None:
        return req.range_search or RANGE_SEARCH_DEFAULT["guard"]
    if recipe_name not in module_recipes():
        return "off"
    return req.range_search or RANGE_SEARCH_DEFAULT["recipe"]


def validate(req: ExportRequest, precisions: Iterable[str]) -> None:
    """Refuse a request whose options do not fit together, naming the option (before any work)."""
    precisions = list(precisions)
    if req.precision not in precisions:
        raise EdgeposeError(f"unknown precision {req.precision!r}; choose from {', '.join(precisions)}")
    if req.precision != "int8" and req.method:
        raise EdgeposeError(f"--method {req.method} applies to int8 only, not {req.precision}")
    if req.parallel not in PARALLEL_MODES:
        raise EdgeposeError(f"unknown --parallel {req.parallel!r}; choose from {', '.join(PARALLEL_MODES)}")
    if req.calib not in CALIBRATORS:
        raise EdgeposeError(f"unknown calibrator {req.calib!r}; choose from {', '.join(CALIBRATORS)}")
    if req.target not in TARGETS:
        raise EdgeposeError(f"unknown target {req.target!r}; choose from {', '.join(TARGETS)}")
    req.weight_bits = check_weight_bits(req.weight_bits, req.target)

    if req.qat_loss not in QAT_LOSSES:
        raise EdgeposeError(f"unknown QAT loss {req.qat_loss!r}; choose from {', '.join(QAT_LOSSES)}")
    if req.qat_select not in QAT_SELECTIONS:
        raise EdgeposeError(f"unknown QAT selection {req.qat_select!r}; choose from {', '.join(QAT_SELECTIONS)}")
    if req.qat_schedule not in QAT_SCHEDULES:
        raise EdgeposeError(f"unknown QAT schedule {req.qat_schedule!r}; choose from {', '.join(QAT_SCHEDULES)}")
    if req.qat_device == "cuda":
        import torch

        if not torch.cuda.is_available():
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
    _validate_objective(req)
    if req.pad_channels and (req.precision != "int8" or (req.method or "ptq") != "ptq" or req.objective is not None
                             or req.target != "ort-cpu"):
        raise EdgeposeError("--pad-channels pads the graph int8 PTQ quantizes for ONNX Runtime CPU: use it with "
                            "--precision int8 (method ptq, target ort-cpu), without --objective")
    _validate_bias_correction(req)
    _validate_range_search(req)
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


def _validate_bias_correction(req: ExportRequest) -> None:
    """``--bias-correction`` corrects the graph of a module recipe's PTQ export, nothing else."""
    from edgepose.quantization.recipes import get_recipe, module_recipes

    if req.bias_correction not in BIAS_CORRECTION_MODES:
        hint = " (True is 'on', False is 'off')" if isinstance(req.bias_correction, bool) else ""
        raise EdgeposeError(f"unknown --bias-correction {req.bias_correction!r}; choose from "
                            f"{', '.join(BIAS_CORRECTION_MODES)}{hint}")
    if req.bias_correction == "off":
        return

    if req.precision != "int8" or (req.method or "ptq") != "ptq":
        raise EdgeposeError("--bias-correction corrects an int8 PTQ graph: use it with --precision int8 (method ptq)")
    if req.max_drop is not None or req.objective is not None:
        raise EdgeposeError("--bias-correction applies to a recipe's PTQ export, not to --max-drop or --objective "
                            "searches")
    if req.bias_correction == "checked" and req.target != "ort-cpu":
        raise EdgeposeError("--bias-correction checked scores both graphs with ONNX Runtime CPU, not the "
                            f"{req.target} target's kernels: use on or off there")
    if get_recipe(req.recipe).name not in module_recipes():
        raise EdgeposeError(f"--bias-correction applies to the module recipes ({', '.join(module_recipes())}); "
                            f"recipe {req.recipe!r} chooses its graph by groups or by measurement")


def _validate_range_search(req: ExportRequest) -> None:
    """``--range-search on`` searches the ranges of a module recipe's PTQ graph or of the accuracy guard's graphs,
    nothing else (unset: :data:`RANGE_SEARCH_DEFAULT`; ``off`` is always accepted)."""
    from edgepose.quantization.recipes import get_recipe, module_recipes

    if req.range_search is None or req.range_search == "off":
        return
    if req.range_search not in RANGE_SEARCH_MODES:
        hint = " (True is 'on', False is 'off')" if isinstance(req.range_search, bool) else ""
        raise EdgeposeError(f"unknown --range-search {req.range_search!r}; choose from "
                            f"{', '.join(RANGE_SEARCH_MODES)}{hint}")
    if req.precision != "int8" or (req.method or "ptq") != "ptq":
        raise EdgeposeError("--range-search searches the ranges of an int8 PTQ graph: use it with --precision int8 "
                            "(method ptq; QAT keeps the PTQ calibration's scales frozen, and searching them before "
                            "fine-tuning was not measured)")
    if req.objective is not None:
        raise EdgeposeError("--range-search applies to a recipe's PTQ export or the accuracy guard (--max-drop), "
                            "not to --objective plans")
    recipe = get_recipe(req.recipe)
    if recipe.candidates and req.target != "ort-cpu":
        recipe = get_recipe(recipe.fallback)  # what auto and checked export for PTQ there (int8_exporters.export_int8)
    if req.max_drop is None and recipe.name not in module_recipes():
        raise EdgeposeError(f"--range-search applies to the module recipes ({', '.join(module_recipes())}) and "
                            f"--max-drop; recipe {req.recipe!r} chooses its graph by groups or by measurement (add "
                            "--recipe safe for the searched safe graph)")


def _validate_objective(req: ExportRequest) -> None:
    """Checks of the precision-plan options (``--objective``)."""
    from edgepose.timing.adapters import ADAPTERS

    if req.objective is None:
        return
    if req.objective not in OBJECTIVES:
        raise EdgeposeError(f"unknown objective {req.objective!r}; choose from {', '.join(OBJECTIVES)}")
    if req.precision != "int8" or (req.method or "ptq") != "ptq":
        raise EdgeposeError("--objective plans int8 PTQ layer by layer: use --precision int8 (method ptq)")
    if req.engine:
        raise EdgeposeError("--objective plans are timed on a CPU runtime; --engine builds TensorRT engines, "
                            "which choose layer precisions themselves: drop one of the two")
    if req.target == "tensorrt":
        raise EdgeposeError("--objective plans are timed on a CPU runtime (--runtime); the tensorrt layout is for "
                            "TensorRT: use --target ort-cpu")
    if req.search not in ("blocks", "full"):
        raise EdgeposeError(f"unknown --search {req.search!r}; choose from blocks, full")
    if req.runtime not in ADAPTERS:
        raise EdgeposeError(f"unknown runtime {req.runtime!r}; choose from {', '.join(ADAPTERS)}")
    if not req.batches or any(int(b) < 1 for b in req.batches):
        raise EdgeposeError(f"--batch needs positive batch sizes, got {list(req.batches)}")
    if req.threads < 0:
        raise EdgeposeError(f"--threads must be ≥ 0 (0 = the runtime's default), got {req.threads}")


__all__ = ["METHODS", "OBJECTIVES", "ExportRequest", "validate"]
