"""``Predictor``: a verified bundle, an ONNX Runtime session, validated windows and streaming.

    >>> p = Predictor.load("wiflow-half.int8.edgepose")
    >>> out = p.predict(windows)              # [N, 540, 20] float32
    >>> out.status[0], out.pose(0)            # "ok", [15, 2] keypoints (pixel/1000)
    >>> for pose in p.stream(frames):         # frames: iterable of [540] arrays (None = lost)
    ...     print(pose.frame, pose.status, pose.keypoints)

A window that fails the corruption rule gets a status and no keypoints: the model never sees it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgepose.runtime.bundle import Bundle, Limits
from edgepose.runtime.errors import BundleError, InputError
from edgepose.runtime.parallel import DEFAULT_PARALLEL, check_parallel, usable_cpus
from edgepose.runtime.session import INPUT_NAME, OrtRunner
from edgepose.runtime.window import CORRUPT_ABS_LIMIT, OK, FrameRing, as_windows, statuses, window_ok

#: Execution providers tried in order when none is asked for, per precision. int8 QDQ graphs
#: run on the CPU provider by default: GPU providers execute most QDQ pairs as float.
AUTO_PROVIDERS = {
    "fp32": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "fp16": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "int8": ("CPUExecutionProvider",),
}
CPU = "CPUExecutionProvider"

_ONE_OK = np.ones(1, dtype=bool)
_ONE_OK.flags.writeable = False  # shared by every one-window result


def choose_providers(precision: str, asked: Sequence[str] | None = None) -> list[str]:
    """The providers a session gets: ``asked`` (checked to exist) or the best available.

    The CPU provider is always appended as the fallback for nodes the first one cannot run.
    """
    available = ort.get_available_providers()
    if asked:
        missing = [p for p in asked if p not in available]
        if missing:
            raise InputError(f"execution provider {missing[0]} is not available in this onnxruntime "
                             f"build (available: {', '.join(available)})")
        chosen = list(asked)
    else:
        chosen = [p for p in AUTO_PROVIDERS.get(precision, (CPU,)) if p in available][:1] or [CPU]
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


def default_threads() -> int:
    """The CPUs this process may run on (respects ``taskset``/cgroup affinity)."""
    return usable_cpus()


@dataclass
class Prediction:
    """Per-window results of :meth:`Predictor.predict`.

    ``status[i]`` is ``"ok"`` or says why window ``i`` gave no pose; ``ok`` is the same as a
    boolean mask. Keypoints of windows that gave no pose are not available: :attr:`keypoints`
    masks them and :meth:`pose` returns ``None``.
    """

    status: list[str]
    ok: np.ndarray
    values: np.ndarray  # [N, J, 2]; rows where ``ok`` is False are zeros, never model output

    def __len__(self) -> int:
        return len(self.status)

    @property
    def keypoints(self) -> np.ma.MaskedArray:
        """``[N, J, 2]`` keypoints in pixel/1000, masked where a window gave no pose."""
        mask = np.broadcast_to(~self.ok[:, None, None], self.values.shape)
        return np.ma.MaskedArray(self.values, mask=mask.copy())

    def pose(self, i: int) -> np.ndarray | None:
        """Keypoints ``[J, 2]`` of window ``i``, or ``None`` when it gave no pose."""
        return self.values[i] if self.ok[i] else None

    def with_nan(self) -> np.ndarray:
        """``float32 [N, J, 2]`` with NaN rows for windows that gave no pose (for ``.npy`` output)."""
        out = self.values.copy()
        out[~self.ok] = np.nan
        return out

    def records(self, start: int = 0) -> Iterator[dict]:
        """One JSON-ready dict per window: ``{"window", "status", "keypoints"}``."""
        for i, st in enumerate(self.status):
            kp = self.pose(i)
            yield {"window": start + i, "status": st, "keypoints": None if kp is None else kp.tolist()}


@dataclass(slots=True)
class StreamPose:
    """One emission of :meth:`Predictor.stream`: the window ending at frame ``frame``."""

    frame: int
    status: str
    keypoints: np.ndarray | None

    def record(self) -> dict:
        return {"frame": self.frame, "status": self.status,
                "keypoints": None if self.keypoints is None else self.keypoints.tolist()}


class Predictor:
    """A model from a verified bundle, ready to predict windows or follow a frame stream."""

    def __init__(self, bundle: Bundle, runner: OrtRunner, providers: list[str],
                 threads: int | None, model_member: str) -> None:
        self.bundle = bundle
        self.runner = runner
        self.session = runner.session
        self.providers = providers
        self.threads = threads
        self.model_member = model_member
        self._float_out = self.session.get_outputs()[0].type == "tensor(float)"
        m = bundle.manifest
        window = m["input"]["window"]
        self.window_shape = (int(window["values_per_frame"]), int(window["frames"]))
        if min(self.window_shape) < 1:
            raise BundleError(f"manifest window shape {list(self.window_shape)} is not usable", bundle.path)
        self.input_name = m["input"].get("name", INPUT_NAME)
        self.joints = list(m["output"]["joints"])
        stream = m.get("stream", {})
        self.default_hop = int(stream.get("hop", 1))
        self.max_hold = int(stream.get("max_hold_frames", 0))

    @property
    def manifest(self) -> dict:
        return self.bundle.manifest

    @property
    def precision(self) -> str:
        return self.manifest["model"]["precision"]

    @classmethod
    def load(cls, bundle: str | Path | Bundle, providers: Sequence[str] | None = None, threads: int | None = None,
             ort_format: bool = False, limits: Limits = Limits(), parallel: str = DEFAULT_PARALLEL) -> "Predictor":
        """Verify ``bundle`` (seal, every member's SHA-256) and open a session on its model.

        Nothing is handed to ONNX Runtime before every hash has matched. ``providers`` picks
        execution providers (default: the best available for the precision, see
        :data:`AUTO_PROVIDERS`); ``threads`` is how many cores a call may use and ``parallel`` how
        (:data:`edgepose.runtime.parallel.PARALLEL_MODES`): ``batch`` (default) runs a call's windows as one
        shard per thread at once (``threads`` default: the CPUs this process may use), ``intra`` as one call
        on ONNX Runtime's intra-op pool (``threads`` default: its own choice); ``ort_format`` runs the
        bundled ``.ort`` model instead of the ONNX one.
        """
        b = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle, limits)
        model = b.manifest.get("model", {})
        member = model.get("ort_file") if ort_format else model.get("file")
        if not member:
            what = "an ONNX Runtime format model (package it with --ort)" if ort_format else "a model"
            raise BundleError(f"bundle holds no {what}", b.path)
        chosen = choose_providers(model.get("precision", "fp32"), providers)
        check_parallel(parallel)
        try:
            runner = OrtRunner(b.read(member), threads=threads or 0, parallel=parallel,
                               providers=chosen, model_format="ORT" if ort_format else None)
        except Exception as exc:  # onnxruntime raises its own (non-exported) exception types
            raise BundleError(f"onnxruntime cannot load {member} ({type(exc).__name__}: "
                              f"{str(exc).strip().splitlines()[0][:300]})", b.path) from None
        return cls(b, runner, runner.session.get_providers(), threads, member)

    # -- windows ---------------------------------------------------------------------------
    def run(self, x: np.ndarray) -> np.ndarray:
        """The bare model on ``float32 [N, C, T]`` that already passed validation."""
        return self.runner.run(x)

    def predict(self, x, batch: int = 256) -> Prediction:
        """Validate windows (shape, dtype, corruption rule) and predict the clean ones.

        ``x`` is ``[N, C, T]`` or one window ``[C, T]``. Raises :class:`InputError` for a wrong
        shape or a non-floating dtype; corrupt windows get a status and no keypoints.
        """
        x = as_windows(x, self.window_shape)
        n = len(x)
        if n == 1 and self._float_out and x.max() <= CORRUPT_ABS_LIMIT and x.min() >= -CORRUPT_ABS_LIMIT:
            # one clean window (the streaming/service case): the rule's check and the model, nothing
            # else; NaN compares False, so a NaN window takes the general path below
            return Prediction([OK], _ONE_OK, self.run(x))
        ok = window_ok(x)
        if (n == 1 and ok[0]) or np.count_nonzero(ok) == n:  # the common case: no copies, no masks
            return Prediction([OK] * n, ok, self._run_batched(x, batch) if n else self._empty(0))
        values = self._empty(n)
        where = np.flatnonzero(ok)
        if len(where):
            values[where] = self._run_batched(x[where], batch)
        return Prediction(statuses(x, ok), ok, values)

    def _empty(self, n: int) -> np.ndarray:
        return np.zeros((n, len(self.joints), 2), dtype=np.float32)

    def _run_batched(self, x: np.ndarray, batch: int) -> np.ndarray:
        if len(x) <= batch:
            return np.asarray(self.run(x), dtype=np.float32)
        return np.concatenate([np.asarray(self.run(x[i : i + batch]), dtype=np.float32)
                               for i in range(0, len(x), batch)])

    # -- streams ---------------------------------------------------------------------------
    def _frame(self, frame, i: int) -> np.ndarray | None:
        if frame is None:
            return None
        arr = np.asarray(frame)
        if arr.size == 0:
            return None
        c = self.window_shape[0]
        if arr.dtype.kind != "f" or arr.shape != (c,):
            raise InputError(f"frame {i}: expected {c} floating-point values, got shape {list(arr.shape)} "
                             f"of {arr.dtype}")
        return arr

    def stream(self, frames: Iterable, hop: int | None = None, max_hold: int | None = None) -> Iterator[StreamPose]:
        """Follow a stream of CSI frames (``[C]`` each, oldest first); yield a pose every ``hop`` frames.

        The first pose comes once ``T`` frames have arrived, then one every ``hop`` frames
        (default: the manifest's ``stream.hop``). A missing frame (``None`` or an empty array)
        is filled with the previous frame, as the training data's preprocessing does, up to
        ``max_hold`` in a row (default: the manifest's); a longer gap makes every window that
        holds it a ``"gap: ..."`` with no pose. A frame that fails the corruption rule makes
        every window that holds it ``"corrupt: ..."`` with no pose. Frames are never altered.
        """
        hop = self.default_hop if hop is None else int(hop)
        if hop < 1:
            raise InputError(f"hop must be at least 1 frame, got {hop}")
        ring = FrameRing(self.window_shape[0], self.window_shape[1],
                         self.max_hold if max_hold is None else int(max_hold))
        t = self.window_shape[1]
        for i, frame in enumerate(frames):
            ring.push(self._frame(frame, i))
            if not ring.full or (ring.count - t) % hop:
                continue
            st = ring.status()
            kp = self.run(ring.window()[None])[0] if st == OK else None
            yield StreamPose(i, st, kp)
