"""Trainer: checkpoints, exact resume, cards, loss, bad checkpoints, DDP with two CPU processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from edgepose.data import SplitSpec, open_dataset
from edgepose.errors import EdgeposeError
from edgepose.skeleton import BODY25_15
from edgepose.training import PoseLoss, TrainConfig, fit, load_checkpoint

FAST = dict(model="wiflow-tiny", batch_size=32, lr=1e-3, threads=1)


def test_pose_loss_hand_computed():
    loss = PoseLoss(BODY25_15)
    gt = torch.zeros(1, 15, 2)
    pred = gt.clone()
    pred[0, 0, 0] = 1.0  # |err| = 1 > beta → 1 - 0.05 on one of 30 coordinates
    pos = (1.0 - 0.05) / 30
    # bone 0-1 gets length 1 (err 1 > 0.05 → 0.975), 14 bones
    bone = (1.0 - 0.025) / 14
    assert float(loss(pred, gt)) == pytest.approx(pos + 0.2 * bone)


def test_fit_writes_card_and_resumes_exactly(tmp_path, tiny_data):
    full = tmp_path / "full"
    card = fit(TrainConfig(epochs=2, **FAST), tiny_data, full, progress=False, log=lambda s: None)
    assert card["model"] == "wiflow-tiny" and card["param_count"] == 56_290
    ds = open_dataset(tiny_data)
    assert card["dataset"]["fingerprint"] == ds.fingerprint
    assert card["split"]["fingerprint"] == ds.split_fingerprint(SplitSpec())
    assert card["split"]["files"] == {k: len(v) for k, v in ds.split(SplitSpec()).items()}
    test = card["metrics"]["test"]
    assert set(test) >= {"clean", "full", "mean_pose", "corrupt_windows"}
    assert test["corrupt_windows"] > 0 and test["full"]["n"] > test["clean"]["n"]
    assert test["clean"]["n"] == len(ds.indices("test", clean=True))
    assert test["full"]["n"] == len(ds.indices("test", clean=False))
    assert set(test["clean"]["pck"]) == {0.1, 0.2, 0.3, 0.4, 0.5}
    assert len(card["history"]) == 2
    saved = json.loads((full / "best.json").read_text())
    assert saved["metrics"]["test"]["clean"]["n"] == test["clean"]["n"]

    # one epoch, "killed", then resumed to two: same weights as the uninterrupted run
    part = tmp_path / "part"
    fit(TrainConfig(epochs=1, **FAST), tiny_data, part, progress=False, log=lambda s: None)
    cfg2 = TrainConfig(epochs=2, **FAST)
    # the config must match for --resume; emulate a rerun with the original epochs extended
    meta = json.loads((part / "last.json").read_text())
    meta["config"] = cfg2.to_dict()
    (part / "last.json").write_text(json.dumps(meta))
    fit(cfg2, tiny_data, part, resume=True, progress=False, log=lambda s: None)
    a, b = load_file(str(full / "last.safetensors")), load_file(str(part / "last.safetensors"))
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_refuses_a_different_config(tmp_path, tiny_data):
    fit(TrainConfig(epochs=1, **FAST), tiny_data, tmp_path, progress=False, log=lambda s: None)
    with pytest.raises(EdgeposeError, match="different training config"):
        fit(TrainConfig(epochs=1, **{**FAST, "lr": 5e-4}), tiny_data, tmp_path, resume=True, progress=False,
            log=lambda s: None)


def test_checkpoint_guards(tmp_path, tiny_data):
    run = tmp_path / "run"
    fit(TrainConfig(epochs=1, **FAST), tiny_data, run, progress=False, log=lambda s: None)
    model, card = load_checkpoint(run)
    assert card["model"] == "wiflow-tiny"
    with pytest.raises(EdgeposeError, match="expected 'wiflow-half'"):
        load_checkpoint(run, expect_model="wiflow-half")
    # weights that do not match their card
    w = run / "best.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(EdgeposeError, match="SHA-256"):
        load_checkpoint(run)


def test_config_file_and_unknown_option(tmp_path):
    p = tmp_path / "cfg.toml"
    p.write_text('model = "wiflow-tiny"\nepochs = 3\nlr = 0.0005\n')
    cfg = TrainConfig.from_file(p)
    assert (cfg.model, cfg.epochs, cfg.lr, cfg.batch_size) == ("wiflow-tiny", 3, 5e-4, 64)
    p.write_text('{"epoch": 3}')
    with pytest.raises(EdgeposeError, match="unknown training option"):
        TrainConfig.from_file(p.rename(tmp_path / "cfg.json"))


@pytest.mark.skipif(sys.platform != "linux", reason="gloo over loopback")
def test_ddp_two_cpu_processes(tmp_path, tiny_data):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29531",
           "-m", "edgepose", "train", "--data", str(tiny_data), "--out", str(out),
           "--model", "wiflow-tiny", "--epochs", "1", "--batch-size", "16", "--threads", "1"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    card = json.loads((out / "best.json").read_text())
    assert card["history"][0]["epoch"] == 1
    assert card["training"]["world_size"] == 2  # both processes took part, not one training alone
    _, loaded = load_checkpoint(out)  # weights that match their card's hash
    assert loaded["model"] == "wiflow-tiny" and loaded["param_count"] == 56_290
    assert card["metrics"]["test"]["clean"]["n"] == len(open_dataset(tiny_data).indices("test", clean=True))


def test_cosine_schedule_and_zoo_preset(tmp_path, tiny_data):
    import math

    zoo = TrainConfig.preset("zoo")
    assert zoo.scheduler == "cosine" and zoo.lr == 1e-3 and zoo.model_overrides == {"dropout": 0.0}
    cfg = TrainConfig.compose("zoo", model="wiflow-tiny", epochs=3, batch_size=32, threads=1)
    card = fit(cfg, tiny_data, tmp_path / "cos", progress=False, log=lambda s: None, recipe="zoo")
    lrs = [h["lr"] for h in card["history"]]
    lo = cfg.lr * cfg.min_lr_ratio
    want = [lo + (cfg.lr - lo) * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)]
    assert lrs == pytest.approx(want, rel=1e-9)
    assert card["recipe"] == "zoo" and card["training"]["epochs_run"] == 3
    assert card["weights_bytes"] == (tmp_path / "cos" / "best.safetensors").stat().st_size
    with pytest.raises(EdgeposeError, match="unknown scheduler"):
        fit(TrainConfig(epochs=1, scheduler="step", **FAST), tiny_data, tmp_path / "bad", progress=False,
            log=lambda s: None)


def test_a_split_other_than_the_reference_is_warned_about_on_dense_training_files(tmp_path, tiny_data):
    """A set whose reference-split training files are cut more densely: another split seed puts
    some of them in validation or test, which the trainer says; the reference split does not."""
    from dataclasses import replace

    from edgepose.data import SplitSpec, open_dataset
    from edgepose.data.synth import synthesize
    from edgepose.training.trainer import dense_split_warning

    from tests.conftest import TINY

    synthesize(tmp_path / "dense", replace(TINY, train_stride=5))
    dense, plain = open_dataset(tmp_path / "dense"), open_dataset(tiny_data)
    assert dense_split_warning(dense, SplitSpec()) is None
    msg = dense_split_warning(dense, SplitSpec(seed=7))
    assert msg and str(tmp_path / "dense") in msg and "every 5 packets" in msg and "seed 7" in msg
    assert dense_split_warning(plain, SplitSpec(seed=7)) is None
