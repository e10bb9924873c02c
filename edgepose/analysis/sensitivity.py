"""Per-group int8 sensitivity on the validation split: ΔPCK@20, ΔMPJPE and output SQNR.

For every quantizable group of the exported graph (:mod:`edgepose.quantization.groups`), the graph with
*only that group* int8 is written by ONNX Runtime's quantizer from one shared calibration and
scored on the clean validation windows against the fp32 graph. Test windows are never touched:
the ranking chooses (in the guard), test only reports.

Each group is one :class:`GroupRecord`; fields that other measurements fill later (the per-layer
int8 speed gain) are optional, so a speed column slots in without changing the accuracy scan.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable


from edgepose.errors import EdgeposeError
from edgepose.quantization.probe import QuantProbe
from edgepose.quantization.sensitivity import GroupRecord, measure_groups
from edgepose.runtime.parallel import DEFAULT_PARALLEL, check_parallel

SCHEMA = "edgepose-sensitivity"
SCHEMA_VERSION = 2  # 2: optional ``speed`` (how ``int8_gain_us`` was measured); 1 still reads


@dataclass
class SensitivityResult:
    """The ranked per-group table of one checkpoint, target and calibrator."""

    model: str
    checkpoint: str
    target: str
    calibrator: str
    split: str
    windows: int
    fp32_pck20: float
    fp32_mpjpe: float
    groups: list[GroupRecord]
    all_int8_delta_pck20_pp: float | None = None
    all_int8_delta_mpjpe: float | None = None
    seconds: float = 0.0
    speed: dict | None = None  # how int8_gain_us was measured: context, runtime, threads, batches, machine

    def ranked(self) -> list[GroupRecord]:
        """Groups, most sensitive first."""
        return sorted(self.groups, key=GroupRecord.sort_key)

    def restore_order(self) -> list[str]:
        """Group names in the order the guard puts them back to float."""
        return [g.name for g in self.ranked()]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["groups"] = [asdict(g) for g in self.ranked()]
        return {"format": SCHEMA, "version": SCHEMA_VERSION, **d}

    @classmethod
    def from_dict(cls, d: dict) -> "SensitivityResult":
        d = {k: v for k, v in d.items() if k not in ("format", "version")}
        d["groups"] = [GroupRecord(**g) for g in d["groups"]]
        return cls(**d)

    def to_markdown(self) -> str:
        """A ranked Markdown table (speed column shown once any record has it)."""
        speed = any(g.int8_gain_us for g in self.groups)
        lines = [f"# int8 sensitivity — {self.model}, target {self.target}, calibrator {self.calibrator}", "",
                 f"{self.windows} clean {self.split} windows; fp32 PCK@20 {100 * self.fp32_pck20:.2f} %, "
                 f"MPJPE {self.fp32_mpjpe:.4f}. One group int8 at a time, everything else float."]
        if self.all_int8_delta_pck20_pp is not None:
            lines.append(f"Every group int8 at once: ΔPCK@20 {self.all_int8_delta_pck20_pp:+.2f} pp, "
                         f"ΔMPJPE {self.all_int8_delta_mpjpe:+.4f}.")
        head = "| rank | group | kind | ΔPCK@20 (pp) | ΔMPJPE | SQNR (dB) |" + (" int8 gain (µs) |" if speed else "")
        lines += ["", head, "|---" * (7 if speed else 6) + "|"]
        for i, g in enumerate(self.ranked(), 1):
            row = (f"| {i} | `{g.name}` | {g.kind} | {g.delta_pck20_pp:+.2f} | {g.delta_mpjpe:+.5f} | "
                   f"{g.sqnr_db:.1f} |")
            if speed:
                row += " " + (", ".join(f"b{b}: {v:+.1f}" for b, v in g.int8_gain_us.items())
                              if g.int8_gain_us else "—") + " |"
            lines.append(row)
        if speed and self.speed:
            sp = self.speed
            big = str(max(int(b) for b in sp["batches"]))
            lines += ["", f"## By int8 speed gain (batch {big})", "",
                      f"Each group flipped to float alone in the {sp['context']} graph and timed against it, "
                      f"paired, on {sp['machine']['cpu_model']} ({sp['runtime']['name']} {sp['runtime']['version']}, "
                      f"{sp['threads'] or 'default'} threads). Gain > 0: int8 saves that much per call here.", "",
                      "| group | kind | int8 gain (µs) | ΔPCK@20 (pp) |", "|---|---|---|---|"]
            timed = [g for g in self.groups if g.int8_gain_us]
            for g in sorted(timed, key=lambda g: -g.int8_gain_us.get(big, 0.0)):
                gain = ", ".join(f"b{b}: {v:+.1f}" for b, v in g.int8_gain_us.items())
                lines.append(f"| `{g.name}` | {g.kind} | {gain} | {g.delta_pck20_pp:+.2f} |")
        return "\n".join(lines) + "\n"

    def write(self, out: Path) -> dict[str, Path]:
        """Write ``sensitivity.json``, ``sensitivity.md`` and ``sensitivity.png`` into ``out``."""
        from edgepose.io import atomic_path, write_json
        from edgepose.analysis.plot import plot_sensitivity

        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "sensitivity.json", "markdown": out / "sensitivity.md", "plot": out / "sensitivity.png"}
        write_json(paths["json"], self.to_dict())
        with atomic_path(paths["markdown"]) as tmp:
            tmp.write_text(self.to_markdown())
        plot_sensitivity(self, paths["plot"])
        return paths


def analyze(checkpoint, data: Path | None = None, target: str = "ort-cpu", calib: str = "percentile",
            calib_count: int = 512, calib_seed: int = 0, val_windows: int | None = None, threads: int = 2,
            speed: bool = False, batches: tuple[int, ...] = (1, 64), speed_threads: int = 0,
            runtime: str = "onnxruntime", timing_seconds: float = 0.8,
            log: Callable[[str], None] = print, speed_parallel: str = DEFAULT_PARALLEL) -> SensitivityResult:
    """Rank the checkpoint's quantizable groups by what int8 costs on the clean validation split.

    Args:
        checkpoint: a zoo name, a ``.safetensors`` path or a training run folder.
        data: the dataset (default: the checkpoint's, found by fingerprint).
        target: int8 layout (``ort-cpu`` or ``tensorrt``); decides which ops are groups.
        calib: calibrator; calibration uses clean *training* windows only.
        val_windows: score on at most this many validation windows (evenly spaced; default all).
        threads: ONNX Runtime threads per session (for scoring).
        speed: also time each group's int8 gain (µs) on this machine: the group flipped to float
            alone in the all-int8 graph, paired against it, at ``batches`` with ``speed_threads``
            threads (0 = the runtime's default) through ``runtime`` (an adapter name), each call run as
            ``speed_parallel`` says (:data:`edgepose.runtime.parallel.PARALLEL_MODES`; default as the plan
            and the bench time).
    """
    from edgepose.exporting import ExportRequest, load_context

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgepose-analyze-") as tmp:
        req = ExportRequest(checkpoint=checkpoint, out=Path(tmp), precision="int8", calib=calib, target=target,
                            data=data, calib_count=calib_count, calib_seed=calib_seed, log=log)
        ctx = load_context(req, Path(tmp))
        probe = ctx.probe(val_windows=val_windows, threads=threads)
        log(f"analyze: {ctx.name}, {len(probe.groups)} groups, {len(probe.x)} clean validation windows, "
            f"fp32 PCK@20 {100 * probe.reference.pck20:.2f} %")
        records = measure_groups(probe, log)
        all_dp, all_dm = probe.delta(probe.score(probe.build(probe.group_names)))
        log(f"  every group int8: ΔPCK@20 {all_dp:+.2f} pp")
        speed_doc = _time_groups(probe, records, batches, speed_threads, runtime, timing_seconds, log,
                                  speed_parallel) if speed else None
    return SensitivityResult(ctx.name, str(req.checkpoint), target, calib, "val", int(len(probe.x)),
                             probe.reference.pck20, probe.reference.mpjpe, records, all_dp, all_dm,
                             time.perf_counter() - t0, speed_doc)


def _time_groups(probe: QuantProbe, records: list[GroupRecord], batches, threads: int, runtime: str, seconds: float,
                 log: Callable[[str], None], parallel: str = DEFAULT_PARALLEL) -> dict:
    """Fill each record's ``int8_gain_us`` around the all-int8 graph; returns how it was measured."""
    from edgepose.timing.adapters import get_adapter
    from edgepose.quantization.planning.search import flip_gains
    from edgepose.quantization.planning.timer import GraphTimer, batch_inputs
    from edgepose.runtime.cpu import cpu_summary

    adapter = get_adapter(runtime)
    timer = GraphTimer(probe.graph_bytes, adapter, threads, batch_inputs(probe.x, batches), seconds=seconds,
                       parallel=check_parallel(parallel))
    context = frozenset(probe.group_names)
    done = [0]

    def tick() -> None:
        done[0] += 1
        if done[0] % 10 == 0 or done[0] == len(records):
            log(f"  speed: {done[0]}/{len(records)} groups timed")

    gains = flip_gains(context, [r.name for r in records], timer, tick)
    for r in records:
        r.int8_gain_us = {str(b): v for b, v in gains[r.name].items()}
    return {"context": "all-int8", "batches": [int(b) for b in batches], "threads": threads, "parallel": parallel,
            "runtime": adapter.describe(), "machine": cpu_summary(), "seconds_per_comparison": seconds}


def load_result(path: Path) -> SensitivityResult:
    """Read a ``sensitivity.json``."""
    from edgepose.io import read_json

    d = read_json(path)
    if d.get("format") != SCHEMA:
        raise EdgeposeError(f"not an edgepose sensitivity file (format {d.get('format')!r})", path)
    if d.get("version", 1) > SCHEMA_VERSION:
        raise EdgeposeError(f"sensitivity file version {d.get('version')} is newer than this edgepose reads "
                            f"({SCHEMA_VERSION}): upgrade edgepose", path)
    return SensitivityResult.from_dict(d)


__all__ = ["GroupRecord", "SensitivityResult", "analyze", "load_result", "measure_groups"]
