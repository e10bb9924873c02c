"""The conformance matrix: every model × input shape × precision × target × data size, end to end.

Each *cell* writes a dataset the way another lab would (plain numpy into the WiFlow layout, or
``.mat`` frames into the MM-Fi layout — not our generator), makes an untrained checkpoint of the
model adapted to that shape, exports one artifact through the public export API (which runs its
parity gate), loads it in ONNX Runtime, and — per group of cells — benches and reports the
artifacts. A cell passes (✓) or fails (✗) with the reason; nothing here raises.

Used by ``tests/test_matrix.py`` (a fast subset) and ``benchmarks/conformance_matrix.py`` (the
whole table, committed as ``benchmarks/results/matrix.md``).
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.errors import EdgeposeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shape:
    """An input contract: the dataset layout, window size and joint count."""

    name: str
    layout: str  # "wiflow" | "mmfi"
    channels: int
    window: int
    joints: int


SHAPES = {
    "wiflow": Shape("wiflow", "wiflow", 540, 20, 15),
    "mmfi": Shape("mmfi", "mmfi", 342, 10, 17),
    "custom": Shape("custom", "wiflow", 90, 50, 15),
}


@dataclass(frozen=True)
class DataSize:
    """How much data a cell gets: files, windows per file, calibration count, corruption."""

    name: str
    files: int = 10
    windows_per_file: int = 7
    calib_count: int = 512
    all_but_one_train_corrupt: bool = False


SIZES = {
    "small": DataSize("small", files=10, windows_per_file=7),  # 70 windows, 49 training: not a multiple of 64
    "one-train-file": DataSize("one-train-file", files=2, windows_per_file=9),  # split 1 / 0 / 1 files
    "one-calib-window": DataSize("one-calib-window", files=10, windows_per_file=7, calib_count=1),
    "odd-counts": DataSize("odd-counts", files=11, windows_per_file=37, calib_count=293),  # 407 windows
    "one-clean-train": DataSize("one-clean-train", files=10, windows_per_file=5, all_but_one_train_corrupt=True),
}


@dataclass(frozen=True)
class Precision:
    """One export: precision, int8 method, calibrator, target, recipe."""

    name: str
    precision: str
    method: str | None = None
    calib: str = "percentile"
    target: str = "ort-cpu"
    recipe: str = "safe"


PRECISIONS = {p.name: p for p in [
    Precision("fp32", "fp32"),
    Precision("fp16", "fp16"),
    *[Precision(f"ptq-{c}-{t}", "int8", "ptq", c, t) for t in ("ort-cpu", "tensorrt")
      for c in ("minmax", "entropy", "percentile")],
    *[Precision(f"qat-{t}", "int8", "qat", "percentile", t) for t in ("ort-cpu", "tensorrt")],
    Precision("qat-global-ort-cpu", "int8", "qat", "percentile", "ort-cpu", "global"),
    # the default int8 export (--recipe auto): a latency plan, within the gate on validation, timed here
    Precision("ptq-auto-ort-cpu", "int8", "ptq", "percentile", "ort-cpu", "auto"),
]}


@dataclass
class Cell:
    """One row of the matrix and its outcome."""

    model: str
    shape: str
    size: str
    precision: str
    ok: bool | None = None
    reason: str = ""
    seconds: float = 0.0
    artifact: Path | None = None
    details: dict = field(default_factory=dict)

    @property
    def mark(self) -> str:
        return "✓" if self.ok else "✗"


# -- datasets made "elsewhere" ------------------------------------------------------------------

def write_wiflow(out: Path, shape: Shape, size: DataSize, seed: int = 0) -> Path:
    """A WiFlow-layout dataset written with plain numpy (random CSI, smooth random poses)."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    n = size.files * size.windows_per_file
    x = rng.normal(0, 0.25, (n, shape.channels, shape.window)).astype(np.float32)
    base = rng.uniform(0.3, 0.7, (1, shape.joints, 2))
    poses = (base + rng.normal(0, 0.05, (n, shape.joints, 2))).astype(np.float32)
    w2file = np.repeat(np.arange(size.files), size.windows_per_file)
    if size.all_but_one_train_corrupt:
        from edgepose.data.split import split_files

        train_files = set(split_files(size.files)[0])
        train_windows = [i for i in range(n) if w2file[i] in train_files]
        for i in train_windows[1:]:
            x[i, 0, 0] = np.nan
    np.save(out / "csi_windows.npy", x)
    np.save(out / "all_keypoints.npy", poses)
    np.savez(out / "window_info.npz", window_to_file=w2file, window_to_frame=np.arange(n))
    starts = np.arange(size.files) * size.windows_per_file
    np.savez(out / "file_info.npz", file_ids=np.array([f"rec{f:03d}" for f in range(size.files)]),
             window_ranges=np.stack([starts, starts + size.windows_per_file], 1),
             keypoints_files=np.array([""] * size.files))
    return out


def write_mmfi(out: Path, shape: Shape, size: DataSize, seed: int = 0) -> Path:
    """An MM-Fi-layout tree (``E01/Sxx/Axx/wifi-csi/frameNNN.mat`` + ``ground_truth.npy``)."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    if shape.channels != 342 or shape.window != 10 or shape.joints != 17:
        raise EdgeposeError(f"the MM-Fi layout is 342×10 → 17 joints, not {shape.channels}×{shape.window}")
    from edgepose.data.split import split_files

    train_files = set(split_files(size.files)[0])
    first_train = min(train_files) if train_files else -1
    for f in range(size.files):
        seq = out / "E01" / f"S{f // 4 + 1:02d}" / f"A{f % 4 + 1:02d}" / "wifi-csi"
        seq.mkdir(parents=True, exist_ok=True)
        np.save(seq.parent / "ground_truth.npy", rng.normal(0, 0.3, (size.windows_per_file, 17, 3)))
        for i in range(size.windows_per_file):
            amp = rng.uniform(20, 40, (3, 114, 10))
            if size.all_but_one_train_corrupt and f in train_files and not (f == first_train and i == 0):
                amp[:] = np.inf  # a frame with no finite value stays corrupt after cleaning
            savemat(seq / f"frame{i + 1:03d}.mat", {"CSIamp": amp, "CSIphase": rng.uniform(-3, 3, (3, 114, 10))})
    return out


def write_dataset(out: Path, shape: Shape, size: DataSize, seed: int = 0) -> Path:
    """Write the dataset of a cell in its shape's layout."""
    return (write_mmfi if shape.layout == "mmfi" else write_wiflow)(out, shape, size, seed)


# -- checkpoints --------------------------------------------------------------------------------

def make_checkpoint(model: str, data: Path, out: Path, seed: int = 0) -> Path:
    """An untrained ``model`` adapted to the dataset's shape, saved with a full card."""
    import torch

    from edgepose.data import SplitSpec, open_dataset
    from edgepose.models import create
    from edgepose.training.checkpoint import describe_model, save_checkpoint, versions
    from edgepose.training.trainer import dataset_record

    ds = open_dataset(data)
    c, t = ds.window_shape
    torch.manual_seed(seed)
    net = create(model, in_channels=c, window=t, joints=ds.layout.n_joints)
    spec = SplitSpec()
    # BatchNorm re-estimation on clean windows (no gradient step): with the initial running
    # statistics an untrained stack shrinks the input's variation to float rounding, and an
    # artifact whose output ignores its input would pass any parity gate trivially.
    # (every clean window, any split: one window's statistics would make the net ill-conditioned)
    pool = np.flatnonzero(~ds.corrupt_mask())
    if len(pool):
        x, _ = ds.read(pool[:64])
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the passes
        net.train()
        with torch.no_grad():
            for _ in range(2):
                net(torch.from_numpy(x))
    net.eval()
    card = {**describe_model(model, net), "recipe": "untrained (conformance matrix)", "dataset": dataset_record(ds),
            "split": {"seed": spec.seed, "fractions": list(spec.fractions), "fingerprint": ds.split_fingerprint(spec),
                      "files": {k: len(v) for k, v in ds.split(spec).items()}},
            "layout": ds.layout.name, "versions": versions(), "metrics": {}}
    return save_checkpoint(out, net, card)


# -- running cells ------------------------------------------------------------------------------

#: seconds per paired comparison when a cell's export times graphs (the default int8's plan): the matrix
#: checks that exports run and load on every shape, not which plan is fastest
CELL_TIMING_SECONDS = 0.1


def run_export(cell: Cell, ckpt: Path, data: Path, out: Path, size: DataSize) -> Cell:
    """Export one cell's artifact and load it in ONNX Runtime; fills ``ok``/``reason``."""
    from edgepose.exporting import ExportRequest, export
    from edgepose.runtime.session import ort_predict, ort_session

    p = PRECISIONS[cell.precision]
    t0 = time.perf_counter()
    try:
        paths = export(ExportRequest(checkpoint=ckpt, out=out, precision=p.precision, method=p.method, calib=p.calib,
                                     target=p.target, recipe=p.recipe, data=data, calib_count=size.calib_count, qat_epochs=1,
                                     parity_windows=16, timing_seconds=CELL_TIMING_SECONDS, log=lambda s: log.debug(s)))
        cell.artifact = paths[0]
        sess = ort_session(paths[0], threads=1)
        shape = sess.get_inputs()[0].shape
        x = np.random.default_rng(1).uniform(0, 1, (2, shape[1], shape[2])).astype(np.float32)
        y = ort_predict(sess, x)
        if not np.isfinite(y).all():
            raise EdgeposeError("artifact gives non-finite outputs", paths[0])
        cell.details["output_spread"] = float(np.abs(y[0] - y[1]).max())
        cell.ok, cell.details["output_shape"] = True, list(y.shape)
    except EdgeposeError as exc:
        cell.ok, cell.reason = False, f"EdgeposeError: {exc}"
    except Exception as exc:  # noqa: BLE001  (a matrix cell records every failure)
        cell.ok, cell.reason = False, f"{type(exc).__name__}: {exc}"
        cell.details["traceback"] = traceback.format_exc()
    cell.seconds = time.perf_counter() - t0
    return cell


def bench_and_report(cells: list[Cell], artifact_dir: Path, data: Path, out: Path) -> None:
    """Bench every artifact of ``artifact_dir`` once (in-process, few calls) and build a report.

    A cell whose artifact does not appear in the bench rows, or whose bench or report failed, is
    marked ✗ with the reason.
    """
    from edgepose.benchmarking import TimingPlan, bench, write_results
    from edgepose.reporting import build_report

    todo = [c for c in cells if c.ok]
    if not todo:
        return
    try:
        res = bench(artifact_dir, "cpu", (1, 3), 1, TimingPlan(warmup=1, iters=2, min_seconds=0.0), data,
                    log=lambda s: log.debug(s), isolate=False)
        results = write_results(res, out / "bench.json")[0]
        build_report([results], out / "report")
        benched = {Path(str(r.get("artifact", r.get("file", "")))).name for r in res["rows"]}
        for c in todo:
            if c.artifact is not None and c.artifact.name not in benched:
                c.ok, c.reason = False, "bench produced no row for this artifact"
    except Exception as exc:  # noqa: BLE001
        for c in todo:
            c.ok, c.reason = False, f"bench/report: {type(exc).__name__}: {exc}"


def run_group(model: str, shape: str, size: str, precisions: list[str], work: Path,
              bench: bool = True) -> list[Cell]:
    """All cells of one (model, shape, size) group, sharing a dataset and checkpoint."""
    shp, sz = SHAPES[shape], SIZES[size]
    cells = [Cell(model, shape, size, p) for p in precisions]
    work.mkdir(parents=True, exist_ok=True)
    try:
        data = write_dataset(work / "data", shp, sz)
        ckpt = make_checkpoint(model, data, work / "ckpt" / f"{model}.safetensors")
    except Exception as exc:  # noqa: BLE001
        for c in cells:
            c.ok, c.reason = False, f"dataset/checkpoint: {type(exc).__name__}: {exc}"
        return cells
    art = work / "artifacts"
    for c in cells:
        run_export(c, ckpt, data, art, sz)
    if bench:
        bench_and_report(cells, art, data, work)
    return cells


def to_markdown(cells: list[Cell]) -> str:
    """The matrix as a Markdown table (one row per cell)."""
    lines = ["| model | input | data | precision | result | seconds | reason |", "|---|---|---|---|---|---|---|"]
    for c in cells:
        reason = c.reason.replace("|", "\\|").replace("\n", " ")[:200]
        lines.append(f"| {c.model} | {c.shape} | {c.size} | {c.precision} | {c.mark} | {c.seconds:.1f} | {reason} |")
    return "\n".join(lines) + "\n"
