"""Box-side verification: is this copy of a bundle the one that was measured, and does it behave?

:func:`verify` checks, in order: the seal and every member's SHA-256 (before any session
exists), that ONNX Runtime loads the model, the golden vectors within the bundle's tolerance
(ONNX and, when bundled, ORT-format model), that the corruption rule refuses poisoned windows,
and measures p50/p99 at batch 1 through the full runtime path. The verdict is one line;
``passed`` is False when any check failed (latency only fails with ``max_slowdown``).

Golden vectors are compared element-wise (``tolerance.max_abs``) and, when the bundle records one,
on the mean |error| over all outputs (``tolerance.mean_abs``; for int8 derived from the export's
own parity, see ``edgepose.deployment.golden``). **int8 numerics per CPU**: an ``ort-cpu`` int8
artifact with 8-bit weights computes exactly only on CPUs with VNNI (and on ARM); on an x86 CPU
without VNNI ONNX Runtime's u8·s8 kernels add pairs of products into saturating int16, so
:func:`isa_warnings` warns (in :attr:`VerifyReport.warnings` and the verdict line). 7-bit-weight
artifacts (``--weight-bits 7``, the default) cannot saturate and give the same integers everywhere.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgepose.runtime.bundle import Bundle, Limits
from edgepose.runtime.cpu import cpu_flags, cpu_model, has_vnni
from edgepose.runtime.errors import BundleError, EdgeposeError
from edgepose.runtime.parallel import DEFAULT_PARALLEL
from edgepose.runtime.predictor import Predictor, default_threads
from edgepose.runtime.window import CORRUPT_ABS_LIMIT


@dataclass
class Check:
    """One verification step and its outcome."""

    name: str
    passed: bool
    detail: str


@dataclass
class VerifyReport:
    """Everything :func:`verify` found; :attr:`verdict` is the one-line summary."""

    bundle: str
    checks: list[Check] = field(default_factory=list)
    latency: dict | None = None
    reference: dict | None = None
    verdict: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def to_dict(self) -> dict:
        return {"bundle": self.bundle, "passed": self.passed, "verdict": self.verdict,
                "checks": [asdict(c) for c in self.checks], "latency": self.latency, "reference": self.reference,
                "warnings": list(self.warnings)}


def golden_check(pred: Predictor, label: str) -> Check:
    """Run the bundle's golden inputs; every output must be within the manifest's tolerance."""
    g = pred.manifest["golden"]
    x, want = pred.bundle.array(g["inputs"]), pred.bundle.array(g["outputs"])
    tol = float(g["tolerance"]["max_abs"])
    mean_tol = g["tolerance"].get("mean_abs")
    out = pred.predict(x)
    if not out.ok.all():
        bad = int((~out.ok).sum())
        return Check(label, False, f"{bad} of {len(x)} golden windows were refused as corrupt ({out.status[0]})")
    return compare_golden(out.values, want, tol, None if mean_tol is None else float(mean_tol), label)


def compare_golden(got: np.ndarray, want: np.ndarray, max_abs: float, mean_abs: float | None,
                   label: str = "golden") -> Check:
    """Every window's outputs within ``max_abs`` and (when given) the mean |error| within ``mean_abs``."""
    err = np.abs(np.asarray(got, dtype=np.float64) - np.asarray(want, dtype=np.float64))
    n = len(want)
    worst = float(err.max()) if err.size else 0.0
    within = int((err.reshape(n, -1).max(axis=1) <= max_abs).sum()) if n else 0
    detail = f"{within}/{n} golden windows within {max_abs:.1e} (max abs error {worst:.2e})"
    ok = within == n
    if mean_abs is not None:
        mean = float(err.mean()) if err.size else 0.0
        ok = ok and mean <= mean_abs
        detail += f", mean abs error {mean:.2e} {'<=' if mean <= mean_abs else '>'} {mean_abs:.1e}"
    return Check(label, ok, detail)


def _is_x86(flags: frozenset[str]) -> bool:
    import platform

    return platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86") or "sse2" in flags


def weight_bits(manifest: dict) -> int | None:
    """7 or 8 for an ``ort-cpu`` int8 bundle (from its recipe: ``weight_bits``, else ``reduce_range``), else None."""
    model = manifest.get("model") or {}
    if model.get("precision") != "int8" or (model.get("target") or "ort-cpu") != "ort-cpu":
        return None
    recipe = model.get("recipe") or {}
    if recipe.get("weight_bits") in (7, 8):
        return int(recipe["weight_bits"])
    if "reduce_range" in recipe:
        return 7 if recipe["reduce_range"] else 8
    return None


def isa_warnings(manifest: dict, flags: frozenset[str] | None = None, vnni: bool | None = None) -> list[str]:
    """Warnings about this CPU's int8 kernels for the bundle (``flags``/``vnni`` default to this machine's)."""
    flags = cpu_flags() if flags is None else frozenset(flags)
    vnni = has_vnni() if vnni is None else vnni
    bits = weight_bits(manifest)
    if bits != 8 or not flags or vnni or not _is_x86(flags):
        return []
    built = ((manifest.get("build") or {}).get("cpu") or {}).get("cpu_model")
    return [f"8-bit-weight int8 model on a CPU without VNNI ({cpu_model()}): ONNX Runtime's u8·s8 kernels here add "
            "pairs of products into saturating int16, so outputs and accuracy can differ from the build machine's"
            + (f" ({built})" if built else "") + "; package an export made with --weight-bits 7 (ISA-portable) "
            "for this CPU"]


def corruption_check(pred: Predictor) -> Check:
    """A NaN and an out-of-range copy of a golden window must come back without keypoints."""
    x = pred.bundle.array(pred.manifest["golden"]["inputs"])[:1].astype(np.float32)
    nan, big = x.copy(), x.copy()
    nan[0, 0, 0] = np.nan
    big[0, -1, -1] = 10 * CORRUPT_ABS_LIMIT
    out = pred.predict(np.concatenate([nan, big]))
    good = (not out.ok.any()) and all(out.pose(i) is None for i in range(2))
    return Check("corruption rule", good, "poisoned windows refused" if good else f"statuses {out.status}")


def measure_latency(pred: Predictor, seconds: float = 2.0, warmup: int = 20, min_iters: int = 50,
                    max_iters: int = 5000) -> dict:
    """p50/p99/mean of :meth:`Predictor.predict` on one golden window (batch 1), in ms."""
    x = pred.bundle.array(pred.manifest["golden"]["inputs"])[:1].astype(np.float32)
    for _ in range(warmup):
        pred.predict(x)
    times = []
    deadline = time.perf_counter() + seconds
    while len(times) < max_iters and (len(times) < min_iters or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        pred.predict(x)
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1e3
    return {"batch": 1, "iters": len(ms), "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean())}


def reference_figures(manifest: dict) -> dict | None:
    """The latency the bundle shipped with: its bench figures, else the build machine's own run."""
    bench = manifest.get("bench") or {}
    fig = bench.get("figures") or {}
    if fig.get("p50_ms") is not None:
        return {"source": "bench", "p50_ms": fig["p50_ms"], "p99_ms": fig.get("p99_ms"),
                "threads": bench.get("threads"), "parallel": bench.get("parallel", "intra"),
                "cpu_model": (bench.get("machine") or {}).get("cpu_model")}
    build = (manifest.get("build") or {}).get("latency")
    if build and build.get("p50_ms") is not None:
        return {"source": "build machine", "p50_ms": build["p50_ms"], "p99_ms": build.get("p99_ms"),
                "threads": build.get("threads"), "parallel": build.get("parallel", "intra"), "cpu_model": (manifest.get("build") or {}).get("cpu", {}).get("cpu_model")}
    return None


def verify(bundle: str | Path, threads: int | None = None, providers: list[str] | None = None,
           seconds: float = 2.0, max_slowdown: float | None = None, limits: Limits = Limits(),
           parallel: str = DEFAULT_PARALLEL) -> VerifyReport:
    """Verify a bundle on this machine; see the module docstring.

    ``threads`` defaults to the CPUs this process may use (so ``taskset -c 0`` measures one
    core); ``parallel`` is how the predictor uses them (:data:`edgepose.runtime.parallel.PARALLEL_MODES`:
    in ``batch`` mode the batch-1 latency measured here runs on one thread). A missing file raises
    :class:`EdgeposeError`; every other problem is a failed check.
    """
    path = Path(bundle)
    if not path.is_file():
        raise EdgeposeError("bundle not found", path)
    report = VerifyReport(str(path))
    threads = threads or default_threads()
    try:
        b = Bundle.open(path, limits)
    except BundleError as exc:
        report.checks.append(Check("integrity", False, exc.problem))
        report.verdict = f"FAIL {path.name}: {exc.problem}"
        return report
    report.checks.append(Check("integrity", True, f"seal and {len(b.members)} member hashes match"))
    m = b.manifest
    try:
        pred = Predictor.load(b, providers=providers, threads=threads, parallel=parallel)
    except EdgeposeError as exc:
        report.checks.append(Check("load", False, exc.problem))
        report.verdict = f"FAIL {path.name}: {exc.problem}"
        return report
    report.checks.append(Check("load", True, f"{pred.model_member} on {pred.providers[0]}, {threads} thread(s), "
                                             f"{pred.runner.describe()}"))
    report.warnings.extend(isa_warnings(m))
    report.checks.append(golden_check(pred, "golden"))
    if m["model"].get("ort_file"):
        try:
            report.checks.append(golden_check(Predictor.load(b, providers=providers, threads=threads,
                                                             ort_format=True, parallel=parallel),
                                              "golden (ORT format)"))
        except EdgeposeError as exc:
            report.checks.append(Check("golden (ORT format)", False, exc.problem))
    report.checks.append(corruption_check(pred))
    lat = measure_latency(pred, seconds)
    mode = pred.runner.mode  # what ran: batch mode runs intra with a GPU provider first
    lat.update(threads=threads, parallel=mode, provider=pred.providers[0])
    report.latency = lat
    ref = reference_figures(m)
    report.reference = ref
    speed = f"p50 {lat['p50_ms']:.3f} ms, p99 {lat['p99_ms']:.3f} ms at batch 1, {threads} thread(s), {mode} mode"
    if ref:
        ratio = lat["p50_ms"] / ref["p50_ms"]
        ref["p50_ratio"] = ratio
        speed += (f" ({ratio:.2f}x the {ref['source']} p50 {ref['p50_ms']:.3f} ms, {ref['parallel']} mode"
                  f"{' on ' + ref['cpu_model'] if ref.get('cpu_model') else ''})")
        if max_slowdown is not None and ref["parallel"] != mode:  # the latency check compares unlike runs
            report.warnings.append(f"the reference latency ran in {ref['parallel']} mode, this check in {mode} mode "
                                   f"(pass --parallel {ref['parallel']} to compare like with like)")
        if max_slowdown is not None:
            report.checks.append(Check("latency", ratio <= max_slowdown,
                                       f"p50 {ratio:.2f}x the reference (limit {max_slowdown:.2f}x)"))
    failed = [c for c in report.checks if not c.passed]
    model = m["model"]
    head = f"{model.get('name', '?')} {model.get('precision', '?')}"
    if failed:
        report.verdict = f"FAIL {path.name} ({head}): " + "; ".join(f"{c.name}: {c.detail}" for c in failed)
    else:
        golden = next(c for c in report.checks if c.name == "golden")
        report.verdict = f"PASS {path.name} ({head}): hashes ok; {golden.detail}; {speed}"
    if report.warnings:
        report.verdict += "".join(f"; WARNING: {w}" for w in report.warnings)
    return report


__all__ = [
    "Check",
    "VerifyReport",
    "compare_golden",
    "isa_warnings",
    "measure_latency",
    "reference_figures",
    "verify",
    "weight_bits",
]
