"""The trainer: one loop for a single process and for ``torchrun`` (DistributedDataParallel).

Per epoch: a seeded shuffle of the clean training windows (``seed``, ``epoch``), batches read in
ascending order from the memory map, AdamW with gradient-norm clipping, then validation MPJPE
driving ReduceLROnPlateau and early stopping. After every epoch the full training state is
written atomically (``last.*``) so ``resume=True`` continues exactly after the last finished
epoch; each improvement on validation MPJPE rewrites the best checkpoint (``best.*``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from edgepose.data import SplitSpec, open_dataset
from edgepose.data.base import CSIDataset
from edgepose.data.split import evenly_spaced
from edgepose.errors import EdgeposeError
from edgepose.evaluation import score_splits, score, torch_predictor
from edgepose.io import read_json, write_json
from edgepose.models import create, model_config
from edgepose.training.checkpoint import describe_model, load_checkpoint, load_train_state, save_checkpoint, save_train_state, versions
from edgepose.training.config import TrainConfig
from edgepose.training.loss import PoseLoss


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return _Dist(dist.get_rank(), dist.get_world_size())


def build_model(cfg: TrainConfig, ds: CSIDataset) -> nn.Module:
    """The configured variant, adapted to the dataset's window shape and joint count."""
    c, t = ds.window_shape
    overrides = {"in_channels": c, "window": t, "joints": ds.layout.n_joints, **cfg.model_overrides}
    model_config(cfg.model, **overrides)  # validates the overrides with a clear error
    return create(cfg.model, **overrides)


SCHEDULERS = ("plateau", "cosine")


def make_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer):
    """``plateau``: ReduceLROnPlateau on validation MPJPE (the reference). ``cosine``: per-epoch
    cosine decay from ``lr`` to ``lr · min_lr_ratio`` over ``epochs``."""
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(cfg.epochs, 1), eta_min=cfg.lr * cfg.min_lr_ratio)
    raise EdgeposeError(f"unknown scheduler {cfg.scheduler!r}; choose from {', '.join(SCHEDULERS)}")


def _step_scheduler(scheduler, val_mpjpe: float) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_mpjpe)
    else:
        scheduler.step()


def dataset_record(ds: CSIDataset) -> dict:
    """The card's ``dataset`` entry: the reader's summary with the path made absolute and, for a
    synthetic set, the generator config it was made with (so it can be regenerated)."""
    rec = ds.describe()
    rec["path"] = str(Path(ds.path).resolve())
    meta_path = Path(ds.path) / "synth_meta.json"
    if meta_path.is_file():
        try:
            meta = read_json(meta_path)
        except EdgeposeError:
            meta = None
        if isinstance(meta, dict) and "config" in meta:
            rec["synth"] = {"generator": meta.get("generator"), "generator_version": meta.get("generator_version"),
                            "layout": meta.get("layout", meta["config"].get("layout", "wiflow")),
                            "config": meta["config"]}
    return rec


def dense_split_warning(ds: CSIDataset, spec: SplitSpec) -> str | None:
    """A warning when a synthetic set cut its reference-split training files more densely
    (``train_stride``) and ``spec`` is another split, so dense files land in validation or test;
    None otherwise."""
    conf = (dataset_record(ds).get("synth") or {}).get("config") or {}
    ts, stride = conf.get("train_stride"), conf.get("stride")
    if ts in (None, stride) or spec == SplitSpec():
        return None
    return (f"{ds.path}: the generator cut the seed-42 70/15/15 split's training files every {ts} packets and the rest "
            f"every {stride}; this split (seed {spec.seed}, fractions {list(spec.fractions)}) puts some densely cut "
            "files in validation or test, whose windows then overlap")


def _hardware(cfg: TrainConfig) -> dict:
    from edgepose.runtime.cpu import cpu_summary

    hw = {**cpu_summary(), "torch_threads": torch.get_num_threads(), "device": cfg.device}
    if cfg.device.startswith("cuda") and torch.cuda.is_available():
        hw["gpu"] = torch.cuda.get_device_name(torch.device(cfg.device))
    return hw


def _batches(idx: np.ndarray, batch: int) -> list[np.ndarray]:
    return [idx[i : i + batch] for i in range(0, len(idx), batch)]


def fit(
    cfg: TrainConfig,
    data: str | Path,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    recipe: str | None = None,
) -> dict:
    """Train ``cfg.model`` on the dataset at ``data`` into the run folder ``out``.

    Returns the best checkpoint's card (with validation and test metrics).
    """
    out = Path(out)
    dd = _init_distributed(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ds = open_dataset(data)
    spec = SplitSpec(cfg.split_seed, tuple(cfg.split_fractions))
    warning = dense_split_warning(ds, spec)
    if warning:
        log(f"warning: {warning}")
    train_idx = ds.indices("train", clean=True, spec=spec)
    val_idx = ds.indices("val", clean=True, spec=spec)
    if not len(train_idx):
        raise EdgeposeError("no clean training windows in this dataset", ds.path)
    if not len(val_idx):
        raise EdgeposeError("no clean validation windows (too few files for the split?)", ds.path)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg, ds)
    kp = ds.keypoints[train_idx]
    model.set_label_stats(torch.from_numpy(kp.mean(0)), torch.from_numpy(kp.reshape(-1, 2).std(0) + 1e-6))
    model.to(cfg.device)
    loss_fn = PoseLoss(ds.layout, cfg.beta, cfg.bone_weight, cfg.bone_beta).to(cfg.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = make_scheduler(cfg, optimizer)

    state = {"epoch": -1, "best_val_mpjpe": float("inf"), "bad_epochs": 0, "history": []}
    run_t0 = time.perf_counter()
    last = out / "last"
    if resume and last.with_suffix(".json").is_file():
        state = load_train_state(last, model, optimizer)
        scheduler.load_state_dict(state.pop("scheduler"))
        state.pop("param_groups", None)
        if state.get("config") and state["config"] != cfg.to_dict():
            raise EdgeposeError("--resume with a different training config than the run was started with",
                                last.with_suffix(".json"))
        if dd.main:
            log(f"resuming after epoch {state['epoch'] + 1}")
    elif resume and dd.main:
        log("nothing to resume; starting fresh")
    if dd.main:
        out.mkdir(parents=True, exist_ok=True)

    net: nn.Module = model
    if dd.world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[torch.device(cfg.device).index] if cfg.device.startswith("cuda") else None)

    card_base = {
        **describe_model(cfg.model, model),
        "recipe": recipe or "custom",
        "train_config": cfg.to_dict(),
        "dataset": dataset_record(ds),
        "split": {"seed": spec.seed, "fractions": list(spec.fractions), "fingerprint": ds.split_fingerprint(spec),
                  "files": {k: len(v) for k, v in ds.split(spec).items()}},
        "layout": ds.layout.name,
        "versions": versions(),
    }
    best_path = out / "best"
    start_epoch = state["epoch"] + 1
    stopped_early = False
    for epoch in range(start_epoch, cfg.epochs):
        if state["bad_epochs"] >= cfg.early_stop_patience:
            stopped_early = True
            break
        t0 = time.perf_counter()
        order = np.random.default_rng([cfg.seed, epoch]).permutation(train_idx)
        # every rank takes an equal shard, so DDP ranks step in lockstep
        per_rank = len(order) // dd.world
        order = order[dd.rank * per_rank : (dd.rank + 1) * per_rank]
        batches = _batches(order, cfg.batch_size)
        net.train()
        total, seen = 0.0, 0
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not (progress and dd.main),
                   leave=False, unit="batch")
        for b in bar:
            x, y = ds.read(np.sort(b))
            x, y = torch.from_numpy(x).to(cfg.device), torch.from_numpy(y).to(cfg.device)
            loss = loss_fn(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            optimizer.step()
            total += float(loss.detach()) * len(b)
            seen += len(b)
            bar.set_postfix(loss=f"{total / seen:.4f}")
        bar.close()
        val = score(torch_predictor(model, cfg.device), ds, val_idx, batch=cfg.eval_batch_size)
        model.train()
        epoch_lr = optimizer.param_groups[0]["lr"]  # the rate this epoch trained with
        _step_scheduler(scheduler, val["mpjpe"])
        improved = val["mpjpe"] < state["best_val_mpjpe"]
        state["bad_epochs"] = 0 if improved else state["bad_epochs"] + 1
        entry = {"epoch": epoch + 1, "train_loss": total / max(seen, 1), "val_mpjpe": val["mpjpe"],
                 "val_pck20": val["pck"][0.2], "lr": epoch_lr,
                 "seconds": round(time.perf_counter() - t0, 2)}
        state["history"].append(entry)
        if dd.main:
            log(f"epoch {epoch + 1}/{cfg.epochs}: loss {entry['train_loss']:.4f}  val MPJPE {val['mpjpe']:.4f}  "
                f"val PCK@20 {100 * val['pck'][0.2]:.2f}%  lr {entry['lr']:.2e}  {entry['seconds']:.0f}s"
                + ("  *best*" if improved else ""))
            if improved:
                state["best_val_mpjpe"] = val["mpjpe"]
                save_checkpoint(best_path, model, {**card_base, "epoch": epoch + 1, "metrics": {"val": val}})
            state["epoch"] = epoch
            save_train_state(last, model, optimizer, {**state, "scheduler": scheduler.state_dict(),
                                                      "config": cfg.to_dict()})
        else:
            state["epoch"] = epoch
            if improved:
                state["best_val_mpjpe"] = val["mpjpe"]
    if dd.world > 1:
        dist.barrier()
    if not dd.main:
        return {}
    if stopped_early:
        log(f"early stop: no validation improvement for {cfg.early_stop_patience} epochs")
    best, card = load_checkpoint(best_path)
    predict = torch_predictor(best, cfg.device)
    results = score_splits(predict, ds, spec, splits=("test",), batch=cfg.eval_batch_size)
    results["train_subset"] = score(predict, ds, np.unique(evenly_spaced(train_idx, 2048)), batch=cfg.eval_batch_size)
    card["metrics"] = {**card["metrics"], **results}
    card["history"] = state["history"]
    train_seconds = sum(h["seconds"] for h in state["history"])
    card["training"] = {
        "epochs_run": len(state["history"]),
        "best_epoch": card.get("epoch"),
        "max_epochs": cfg.epochs,
        "stopped_early": stopped_early,
        "train_seconds": round(train_seconds, 1),
        "wall_seconds_this_process": round(time.perf_counter() - run_t0, 1),
        "world_size": dd.world,
        "hardware": _hardware(cfg),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    save_checkpoint(best_path, best, {k: v for k, v in card.items() if k not in ("format", "version", "weights_sha256", "weights_file", "weights_bytes")})
    write_json(out / "train_config.json", cfg.to_dict())
    return card
