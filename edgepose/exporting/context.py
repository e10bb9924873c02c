"""The export context: one request's loaded model, data, fp32 graph, calibration and probe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from edgepose.data import SplitSpec, open_dataset
from edgepose.data.base import CSIDataset
from edgepose.data.split import evenly_spaced
from edgepose.errors import EdgeposeError
from edgepose.evaluation import torch_predictor
from edgepose.exporting.fold import fold_batchnorm
from edgepose.exporting.onnx_fp32 import export_onnx
from edgepose.exporting.parity import ort_predict, ort_session, parity
from edgepose.exporting.request import ExportRequest
from edgepose.models.padding import pad_tcn_channels, tcn_padding, why_not_padded
from edgepose.quantization.calibration import CalibrationSet
from edgepose.quantization.targets import get_target
from edgepose.runtime.cpu import cpu_summary
from edgepose.training.checkpoint import load_checkpoint

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass
class ExportContext:
    """One export in progress: the request, the loaded fp32 model and its card, a work folder.

    Everything an exporter needs is derived here once and cached: the dataset (by fingerprint),
    the split, the batch-norm-folded fp32 ONNX graph, the parity windows, the calibration set and
    a quantization probe over the fp32 graph.
    """

    req: ExportRequest
    model: "torch.nn.Module"
    card: dict
    work: Path
    _ds: CSIDataset | None = None
    _fp32: Path | None = None
    _padded: Path | None = None

    @property
    def name(self) -> str:
        """The model's registry name (``wiflow-half`` …)."""
        return self.card["model"]

    @property
    def window_shape(self) -> tuple[int, int]:
        """``(channels, window)`` of the model's input."""
        return (self.model.cfg.in_channels, self.model.cfg.window)

    @property
    def spec(self) -> SplitSpec:
        """The split the checkpoint was trained with (its card's)."""
        return SplitSpec.from_card(self.card)

    @property
    def dataset(self) -> CSIDataset:
        """The checkpoint's dataset (``req.data``, else found by fingerprint or regenerated)."""
        if self._ds is None:
            from edgepose.zoo import resolve_dataset

            # calibration and the parity gate tolerate other data (with a warning); a missing
            # dataset is named by its fingerprint, or regenerated when it is the synthetic default
            path = resolve_dataset(self.card, self.req.data, "calibration")
            self._ds = open_dataset(path)
            if tuple(self._ds.window_shape) != self.window_shape:
                raise EdgeposeError(f"dataset windows are {self._ds.window_shape}, the checkpoint expects "
                                    f"{self.window_shape}", path)
        return self._ds

    def parity_set(self) -> tuple[np.ndarray, np.ndarray]:
        """At most ``req.parity_windows`` clean test windows, evenly spaced, and their labels."""
        ds = self.dataset
        idx = ds.indices("test", clean=True, spec=self.spec)
        return ds.read(np.unique(evenly_spaced(idx, self.req.parity_windows)))

    def fp32_onnx(self) -> Path:
        """The batch-norm-folded fp32 ONNX graph in the work folder (exported once)."""
        if self._fp32 is None:
            self._fp32 = self.work / f"{self.name}.fp32.onnx"
            export_onnx(fold_batchnorm(self.model), self._fp32, self.window_shape, self.req.opset)
        return self._fp32

    def int8_source_onnx(self) -> Path:
        """The fp32 graph int8 PTQ quantizes: :meth:`fp32_onnx`, or with ``req.pad_channels`` the same
        function with the TCN's widths padded to multiples of 4 (:func:`edgepose.models.padding.pad_tcn_channels`).

        Timings against fp32 and the fp32 fallback always use :meth:`fp32_onnx`, the unpadded graph.
        """
        return self.padded_fp32_onnx() if self.pads_channels else self.fp32_onnx()

    def padded_fp32_onnx(self) -> Path:
        """The batch-norm-folded fp32 graph with the TCN's widths padded to multiples of 4 (exported once;
        the same function as :meth:`fp32_onnx`). Only for a model whose TCN :attr:`can_pad_channels`."""
        if self._padded is None:
            self._padded = self.work / f"{self.name}.fp32-padded.onnx"
            export_onnx(fold_batchnorm(pad_tcn_channels(self.model)), self._padded, self.window_shape, self.req.opset)
        return self._padded

    @property
    def can_pad_channels(self) -> bool:
        """Whether padding changes this model's graph (some TCN width is padded)."""
        return any(not lay.is_identity for lay in tcn_padding(self.model))

    def stats_model(self) -> Path | None:
        """Where int8 calibration collects activation statistics when that is not the quantized graph:
        the unpadded fp32 graph under ``req.pad_channels`` (same tensors, same names, no zero channels to
        shift percentile or entropy ranges), else ``None``."""
        return self.fp32_onnx() if self.pads_channels else None

    @property
    def pads_channels(self) -> bool:
        """Whether ``req.pad_channels`` changes this model's graph (some TCN width is padded)."""
        return self.req.pad_channels and self.can_pad_channels

    def channel_padding(self) -> dict | None:
        """What ``req.pad_channels`` did, for the card: the TCN widths before and after, or (for a model
        whose widths need no padding, or whose TCN cannot use it) that the graph was left as it is.
        ``None`` without ``req.pad_channels``."""
        if not self.req.pad_channels:
            return None
        layouts = tcn_padding(self.model)
        record = {"requested": True, "applied": self.pads_channels, "tcn_widths": [lay.width for lay in layouts]}
        if self.pads_channels:
            return record | {"tcn_padded_widths": [lay.padded for lay in layouts], "exact": True,
                             "why": "pointwise int8 convolutions take ONNX Runtime's batch-parallel path only "
                                    "with channel counts that are multiples of 4 (docs/int8-threads.md)"}
        return record | {"why": f"nothing padded: {why_not_padded(self.model)}; the int8 graph is the unpadded one"}

    def base_card(self, precision: str) -> dict:
        """The card fields every artifact of this export shares: model, contract, parent checkpoint."""
        card = {"precision": precision, "model": self.name, "param_count": self.card.get("param_count"),
                "window_shape": list(self.window_shape), "joints": self.model.cfg.joints,
                "layout": self.card.get("layout"), "opset": self.req.opset,
                "input": {"name": "csi", "shape": ["batch", *self.window_shape], "dtype": "float32"},
                "output": {"name": "keypoints", "shape": ["batch", self.model.cfg.joints, 2], "units": "pixel/1000"},
                "parent": {"checkpoint": str(Path(self.req.checkpoint).resolve()), "weights_sha256": self.card.get("weights_sha256"),
                           "dataset_fingerprint": self.card.get("dataset", {}).get("fingerprint"),
                           "split_fingerprint": self.card.get("split", {}).get("fingerprint")}}
        padding = self.channel_padding() if precision == "int8" else None
        if padding is not None:
            card["channel_padding"] = padding
        return card

    def torch_reference(self, x: np.ndarray) -> np.ndarray:
        """The fp32 torch model's outputs on ``x``."""
        return torch_predictor(self.model)(x)

    def parity_vs_torch(self, path: Path) -> dict:
        """Output distance and PCK@20 of the ONNX graph at ``path`` against the torch model, on the parity windows."""
        x, y = self.parity_set()
        out = parity(self.torch_reference(x), ort_predict(ort_session(path), x), y, self.dataset.layout.torso)
        return {**out, "scored_on": cpu_summary()}

    def test_delta(self, path: Path, threads: int = 2) -> dict:
        """The chosen graph against the fp32 ONNX on the whole clean test split (test only reports)."""
        from edgepose.evaluation import score
        from edgepose.metrics import pck_at

        ds = self.dataset
        test_idx = ds.indices("test", clean=True, spec=self.spec)
        scores = {}
        for key, graph in (("fp32", self.fp32_onnx()), ("int8", path)):
            sess = ort_session(graph, threads=threads)
            scores[key] = score(lambda x, s=sess: ort_predict(s, x), ds, test_idx)
        test = {"windows": int(len(test_idx)), "fp32_pck20": pck_at(scores["fp32"]["pck"], 0.2),
                "int8_pck20": pck_at(scores["int8"]["pck"], 0.2)}
        test["delta_pck20_pp"] = 100.0 * (test["int8_pck20"] - test["fp32_pck20"])
        test["delta_mpjpe"] = scores["int8"]["mpjpe"] - scores["fp32"]["mpjpe"]
        # int8 numerics depend on the kernels ONNX Runtime picks for this CPU (u8·s8 on AVX2 vs VNNI)
        test["scored_on"] = cpu_summary()
        return test

    def calibration(self) -> CalibrationSet:
        """The calibration windows (clean training windows; a short set is logged, not shrunk silently)."""
        calib = CalibrationSet.from_dataset(self.dataset, self.req.calib_count, self.req.calib_seed, self.spec,
                                            self.window_shape)
        if calib.short:
            self.req.log(f"note: {calib.describe()['note']}")
        return calib

    def probe(self, val_windows: int | None = None, threads: int = 2, calib: CalibrationSet | None = None,
              source: Path | None = None):
        """A quantization probe over this checkpoint's fp32 graph, scored on clean validation windows.

        ``source``: another fp32 graph of the same function to quantize (a benchmark's exact rewrite
        of the model); its nodes must carry the same module scopes, and its own activations are
        calibrated (no :meth:`stats_model`). Default :meth:`int8_source_onnx`.
        """
        from edgepose.quantization.probe import QuantProbe
        from edgepose.quantization.groups import leaf_module_paths, quant_groups

        ds = self.dataset
        idx = np.unique(evenly_spaced(ds.indices("val", clean=True, spec=self.spec), val_windows))
        if not len(idx):
            raise EdgeposeError("no clean validation windows to measure int8 accuracy on", ds.path)
        x, y = ds.read(idx)
        target = get_target(self.req.target, self.req.weight_bits)
        explicit = source is not None
        source = source or self.int8_source_onnx()
        groups = quant_groups(onnx.load(str(source)), target, leaf_module_paths(self.model))
        calib = calib or self.calibration()
        return QuantProbe.calibrate(source, groups, target, self.req.calib, calib.windows, x, y,
                                    ds.layout.torso, self.work / "probe",
                                    stats_model=None if explicit else self.stats_model(), threads=threads,
                                    recordings=np.asarray(ds.window_file)[idx])


def load_context(req: ExportRequest, work: Path) -> ExportContext:
    """Resolve and load ``req.checkpoint`` into an export context working in ``work``."""
    from edgepose.zoo import resolve_checkpoint

    req.checkpoint = resolve_checkpoint(req.checkpoint)
    model, card = load_checkpoint(req.checkpoint)
    return ExportContext(req, model, card, work)


__all__ = ["ExportContext", "load_context"]
