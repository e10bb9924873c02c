"""Locked accuracy of one backend's outputs, plus the per-recording hits the bootstrap needs."""

from __future__ import annotations

from typing import Callable

import numpy as np

from edgepose.data.base import CSIDataset, SplitSpec
from edgepose.evaluation import score_splits
from edgepose.metrics import THRESHOLDS, joint_errors


def score_backend(predict: Callable[[np.ndarray], np.ndarray], ds: CSIDataset, spec: SplitSpec,
                  batch: int = 256) -> dict:
    """Clean/full test scores, the mean-pose baseline and ``by_recording`` hit counts.

    ``by_recording`` holds, for every test recording (in file order): its clean window count and,
    per PCK threshold, how many joints of those windows were within it. Summing hits over
    recordings and dividing by ``windows × joints_per_window`` gives back the clean PCK exactly;
    resampling recordings gives the bootstrap (:mod:`.stats`).
    """
    res = score_splits(predict, ds, spec, splits=("test",), batch=batch)["test"]
    idx = ds.indices("test", clean=True, spec=spec)
    hits = np.zeros((len(THRESHOLDS), len(idx)), dtype=np.int64)
    for start in range(0, len(idx), batch):
        sel = idx[start : start + batch]
        x, y = ds.read(sel)
        dist, d = joint_errors(predict(x), y, ds.layout.torso)
        ratio = dist / d[:, None]
        for k, t in enumerate(THRESHOLDS):
            hits[k, start : start + len(sel)] = np.count_nonzero(ratio <= t, axis=1)
    files, inverse = np.unique(ds.window_file[idx], return_inverse=True)
    by_recording = {
        "recordings": [ds.file_ids[int(f)] for f in files],
        "windows": np.bincount(inverse, minlength=len(files)).tolist(),
        "joints_per_window": int(ds.layout.n_joints),
        "hits": {str(t): np.bincount(inverse, weights=hits[k], minlength=len(files)).astype(np.int64).tolist()
                 for k, t in enumerate(THRESHOLDS)},
    }
    return {"clean": res["clean"], "full": res["full"], "mean_pose": res["mean_pose"], "by_recording": by_recording}
