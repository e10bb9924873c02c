"""The reference work's int8 method, reproduced on *our* checkpoint and data as a baseline.

The reference quantized the half WiFlow-STD model with torch FX (fbgemm backend, one global
qconfig for every op), calibrating static PTQ on 64 batches, and ran 3 epochs of FX QAT with
AdamW lr 2e-5, then converted to int8. ``torch.ao.quantization`` is deprecated; it is used here
only to measure that baseline side by side with edgepose's exports, scored by the same metric.

Both are scored on the clean test split, each with its ΔPCK@20 against the fp32 torch model and a
paired bootstrap 95 % interval over test recordings (the statistic every edgepose row uses).

    python benchmarks/reference_fx_baseline.py wiflow-half --out benchmarks/results/reference-fx-wiflow-half.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from edgepose.data import SplitSpec, open_dataset
from edgepose.evaluation import torch_predictor
from edgepose.io import write_json
from edgepose.training import load_checkpoint
from edgepose.training.loss import PoseLoss


def _batches(ds, idx, batch, rng):
    order = rng.permutation(idx)
    for i in range(0, len(order), batch):
        yield ds.read(np.sort(order[i : i + batch]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="a zoo name (its default dataset is regenerated) or a checkpoint path")
    ap.add_argument("--data", type=Path, default=None, help="dataset (default: the checkpoint's, by fingerprint)")
    ap.add_argument("--calib-batches", type=int, default=64)
    ap.add_argument("--qat-epochs", type=int, default=3)
    ap.add_argument("--qat-lr", type=float, default=2e-5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    from torch.ao.quantization import get_default_qat_qconfig_mapping, get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx, prepare_qat_fx

    torch.backends.quantized.engine = "fbgemm"
    from edgepose.runtime.cpu import cpu_summary
    from edgepose.stats import paired_bootstrap_delta
    from edgepose.zoo import resolve_checkpoint, resolve_dataset

    from common import window_hits

    ckpt = resolve_checkpoint(args.checkpoint)
    model, card = load_checkpoint(ckpt)
    data = args.data or resolve_dataset(card, None, "scoring")
    ds = open_dataset(data)
    spec = SplitSpec.from_card(card)
    test = ds.indices("test", clean=True, spec=spec)
    train = ds.indices("train", clean=True, spec=spec)
    xt, yt = ds.read(test)
    recs = np.asarray(ds.window_file)[test]
    example = (torch.from_numpy(ds.read(train[:2])[0]),)
    res = {"method": "torch FX fbgemm, global default qconfig", "checkpoint": str(ckpt),
           "dataset": {"path": str(data), "fingerprint": ds.fingerprint},
           "test_windows": int(len(test)), "test_recordings": int(len(np.unique(recs))),
           "machine": cpu_summary(), "torch": torch.__version__}

    def hits(m):
        return window_hits(torch_predictor(m)(xt), yt, ds.layout.torso)

    base = hits(model)

    def pck20(m):
        return float(hits(m).mean())

    def delta(m) -> dict:
        return paired_bootstrap_delta(hits(m), base, recs).to_dict()

    res["fp32_pck20"] = float(base.mean())
    # --- static PTQ, 64 calibration batches of training windows
    t0 = time.perf_counter()
    prepared = prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping("fbgemm"), example)
    rng = np.random.default_rng(0)
    with torch.inference_mode():
        for i, (x, _) in enumerate(_batches(ds, train, args.batch, rng)):
            if i >= args.calib_batches:
                break
            prepared(torch.from_numpy(x))
    ptq = convert_fx(prepared)
    res["ptq"] = {"int8_pck20": pck20(ptq), "delta_pck20": delta(ptq), "calib_batches": args.calib_batches,
                  "seconds": round(time.perf_counter() - t0, 1)}
    # --- QAT: 3 epochs AdamW lr 2e-5, then convert
    t0 = time.perf_counter()
    qat = prepare_qat_fx(copy.deepcopy(model).train(), get_default_qat_qconfig_mapping("fbgemm"), example)
    opt = torch.optim.AdamW(qat.parameters(), lr=args.qat_lr)
    loss_fn = PoseLoss(ds.layout)
    for epoch in range(args.qat_epochs):
        for x, y in _batches(ds, train, args.batch, np.random.default_rng(epoch)):
            loss = loss_fn(qat(torch.from_numpy(x)), torch.from_numpy(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
    qat.eval()
    fake = pck20(qat)
    converted = convert_fx(copy.deepcopy(qat))
    res["qat"] = {"fake_quant_pck20": fake, "int8_pck20": pck20(converted), "delta_pck20": delta(converted),
                  "fake_quant_delta_pck20": delta(qat), "epochs": args.qat_epochs,
                  "lr": args.qat_lr, "seconds": round(time.perf_counter() - t0, 1)}
    for k in ("ptq", "qat"):
        res[k]["delta_pp"] = 100 * (res[k]["int8_pck20"] - res["fp32_pck20"])
    res["qat"]["fake_vs_int8_gap_pp"] = 100 * (res["qat"]["fake_quant_pck20"] - res["qat"]["int8_pck20"])
    write_json(args.out, res)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
