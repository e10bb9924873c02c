"""Training throughput of a model on this CPU, and proof the data pipeline is not the bottleneck.

Measures, on the default synthetic dataset layout (memory-mapped WiFlow files):
  * data: seconds to read one shuffled batch from the memory map (what the trainer does);
  * step: seconds for forward + backward + AdamW step on that batch;
and reports windows/s for both. The data path must be a small fraction of the step.

    python benchmarks/train_throughput.py --data runs/default/data --out benchmarks/results/train_throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from edgepose.data import open_dataset
from edgepose.io import write_json
from edgepose.models import create
from edgepose.training.loss import PoseLoss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", default="wiflow-half")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    ds = open_dataset(args.data)
    idx = ds.indices("train")
    rng = np.random.default_rng(0)
    model = create(args.model, dropout=0.0)
    loss_fn = PoseLoss(ds.layout)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data_s, step_s = [], []
    for i in range(args.steps + 5):
        t0 = time.perf_counter()
        x, y = ds.read(np.sort(rng.choice(idx, args.batch, replace=False)))
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        t1 = time.perf_counter()
        loss = loss_fn(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if i >= 5:  # warm-up excluded
            data_s.append(t1 - t0)
            step_s.append(t2 - t1)
    d, s = float(np.median(data_s)), float(np.median(step_s))
    result = {
        "model": args.model, "batch": args.batch, "steps": args.steps,
        "machine": {"cpu_count": os.cpu_count(), "arch": platform.machine(), "torch_threads": torch.get_num_threads(),
                    "torch": torch.__version__},
        "data_ms_per_batch_median": 1e3 * d, "step_ms_per_batch_median": 1e3 * s,
        "train_windows_per_s": args.batch / (d + s),
        "step_only_windows_per_s": args.batch / s,
        "data_only_windows_per_s": args.batch / d,
        "data_share_of_step": d / (d + s),
    }
    write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
