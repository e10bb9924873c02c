"""A teacher-labelled tiny model for int8 accuracy tests, and a way to make one group destructive.

The checkpoint is a small WiFlow-STD whose labels are its own fp32 predictions around a spread
pose: fp32 scores 100 % PCK@20 and benign int8 noise stays far inside the threshold. Corrupting one
group's calibration range (as an outlier in the calibration windows would) makes exactly that
group destructive. Used by the guard, analysis and precision-plan tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch


DESTRUCTIVE = "decoder.3"  # its input's range is corrupted: the input is decoder.0's SiLU output,
TOUCHING = {"decoder.0", "decoder.3"}  # so both groups that quantize that tensor are destructive


def make_teacher(root: Path, channels: int = 40, window: int = 20, seed: int = 0) -> tuple[Path, Path]:
    """A tiny WiFlow-STD checkpoint and a dataset labelled with its own fp32 outputs."""
    from edgepose.conformance import DataSize, Shape, write_dataset
    from edgepose.data import SplitSpec, open_dataset
    from edgepose.models import create
    from edgepose.training.checkpoint import describe_model, save_checkpoint, versions
    from edgepose.training.trainer import dataset_record

    data = write_dataset(root / "data", Shape("mini", "wiflow", channels, window, 15),
                         DataSize("mini", files=10, windows_per_file=6))
    torch.manual_seed(seed)
    net = create("wiflow-tiny", in_channels=channels, window=window, joints=15)
    x = torch.from_numpy(np.load(data / "csi_windows.npy"))
    for m in net.modules():  # BN statistics from the data, so outputs depend on the input
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        net(x)
    net.eval()
    pose = np.stack([np.linspace(0.1, 0.9, 15), np.tile([0.3, 0.7], 8)[:15]], 1)
    net.set_label_stats(torch.from_numpy(pose), torch.tensor([0.5, 0.5]))
    with torch.no_grad():
        y = net(x).numpy()
    np.save(data / "all_keypoints.npy", y.astype(np.float32))
    ds, spec = open_dataset(data), SplitSpec()
    card = {**describe_model("wiflow-tiny", net), "recipe": "teacher labels (test)", "dataset": dataset_record(ds),
            "split": {"seed": spec.seed, "fractions": list(spec.fractions), "fingerprint": ds.split_fingerprint(spec),
                      "files": {k: len(v) for k, v in ds.split(spec).items()}},
            "layout": ds.layout.name, "versions": versions(), "metrics": {}}
    return save_checkpoint(root / "ckpt" / "mini.safetensors", net, card), data


def corrupt_ranges(monkeypatch, groups: tuple[str, ...] | None = (DESTRUCTIVE,), factor: float = 1e4):
    """Widen the calibration range of the input of each named group's conv (``None``: every tensor)."""
    import edgepose.quantization.probe as probe_mod
    from edgepose.quantization.recipes import node_module_path

    real = probe_mod.compute_ranges

    def fake(model_path, windows, calibrator, **kw):
        ranges = dict(real(model_path, windows, calibrator, **kw))
        if groups is None:
            return {k: (lo * factor - 1.0, hi * factor + 1.0) for k, (lo, hi) in ranges.items()}
        for node in onnx.load(str(model_path)).graph.node:
            if node.op_type == "Conv" and (groups is None or node_module_path(node) in groups):
                lo, hi = ranges[node.input[0]]
                ranges[node.input[0]] = (lo * factor - 1.0, hi * factor + 1.0)
        return ranges

    monkeypatch.setattr(probe_mod, "compute_ranges", fake)
