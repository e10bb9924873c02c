"""Score a model on a dataset split with the locked metric, plus the baselines every report shows.

Reported for each split: the *clean* score (corrupt windows removed) and the *full* score
(corrupt windows zero-filled and counted), the mean-pose baseline (training-set mean pose for
every window) and end-effector PCK (wrists and ankles).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from edgepose.data.base import CSIDataset, SplitSpec
from edgepose.metrics import PoseMeter, pck_at

Predictor = Callable[[np.ndarray], np.ndarray]


def torch_predictor(model: nn.Module, device: str = "cpu") -> Predictor:
    """Wrap a torch model as ``windows [n, C, T] → keypoints [n, J, 2]`` (numpy in, numpy out)."""
    model = model.to(device).eval()

    @torch.inference_mode()
    def predict(x: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(np.ascontiguousarray(x)).to(device)).float().cpu().numpy()

    return predict


def _meter(ds: CSIDataset) -> PoseMeter:
    return PoseMeter(torso=ds.layout.torso, subsets={"end_effectors": ds.layout.end_effectors})


def score(predict: Predictor, ds: CSIDataset, idx: np.ndarray, zero_fill: bool = False, batch: int = 256) -> dict:
    """Locked metrics of ``predict`` on windows ``idx`` read in batches."""
    meter = _meter(ds)
    for start in range(0, len(idx), batch):
        x, y = ds.read(idx[start : start + batch], zero_fill_corrupt=zero_fill)
        meter.update(predict(x), y)
    return meter.compute()


def mean_pose(ds: CSIDataset, spec: SplitSpec = SplitSpec()) -> np.ndarray:
    """Mean keypoints ``[J, 2]`` over the clean training windows."""
    return ds.keypoints[ds.indices("train", clean=True, spec=spec)].mean(axis=0)


def baseline_scores(ds: CSIDataset, split: str = "test", spec: SplitSpec = SplitSpec()) -> dict:
    """Mean-pose baseline on the clean windows of ``split``."""
    idx = ds.indices(split, clean=True, spec=spec)
    meter = _meter(ds)
    gt = ds.keypoints[idx]
    meter.update(np.broadcast_to(mean_pose(ds, spec), gt.shape), gt)
    return meter.compute()


def score_splits(predict: Predictor, ds: CSIDataset, spec: SplitSpec = SplitSpec(), splits=("test",),
             batch: int = 256) -> dict:
    """Clean and full scores on each split, the mean-pose baseline and corruption counts."""
    out: dict = {"corruption": ds.corruption_report()}
    for split in splits:
        clean = ds.indices(split, clean=True, spec=spec)
        full = ds.indices(split, clean=False, spec=spec)
        out[split] = {
            "clean": score(predict, ds, clean, batch=batch),
            "full": score(predict, ds, full, zero_fill=True, batch=batch),
            "mean_pose": baseline_scores(ds, split, spec),
            "corrupt_windows": int(len(full) - len(clean)),
        }
    return out


def format_table(results: dict, split: str = "test") -> str:
    """Plain-text PCK table of one split: clean, full, mean-pose baseline, end effectors."""
    r = results[split]
    rows = [("model (clean)", r["clean"]), ("model (full, corrupt zero-filled)", r["full"]),
            ("mean-pose baseline (clean)", r["mean_pose"])]
    head = f"{split} split — PCK@t in %, MPJPE in label units (pixel/1000)"
    lines = [head, f"{'':36s}" + "".join(f"{'@' + str(int(t * 100)):>8s}" for t in (0.1, 0.2, 0.3, 0.4, 0.5))
             + f"{'MPJPE':>9s}{'ends@20':>9s}{'n':>7s}"]
    for name, m in rows:
        ends = pck_at(m["end_effectors_pck"], 0.2) if "end_effectors_pck" in m else float("nan")
        lines.append(f"{name:36s}" + "".join(f"{100 * pck_at(m['pck'], t):8.2f}" for t in (0.1, 0.2, 0.3, 0.4, 0.5))
                     + f"{m['mpjpe']:9.4f}{100 * ends:9.2f}{m['n']:7d}")
    return "\n".join(lines)
