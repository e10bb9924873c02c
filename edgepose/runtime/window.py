"""What a window is, how input is validated, and the frame ring buffer that streaming uses.

A *window* is ``float32 [C, T]``: ``C`` values per CSI frame (one radio packet) by ``T`` frames,
oldest first, so ``window[:, t]`` is frame ``t``. A *frame* is ``[C]``.

The corruption rule is the one the training data uses (``edgepose.data.base``): a window is
corrupt when it holds any non-finite value or ``max |x| > 1.5``. A corrupt window gets a status
and no keypoints; it is never fed to the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgepose.runtime.errors import InputError

#: Largest magnitude a clean window may hold (same value as ``edgepose.data.base.CORRUPT_ABS_LIMIT``).
CORRUPT_ABS_LIMIT = 1.5

#: Status of a window the model ran on.
OK = "ok"
#: Status prefixes of windows that gave no keypoints.
CORRUPT = "corrupt"
GAP = "gap"

_FLOAT_KINDS = "f"


def as_windows(x, window_shape: Sequence[int], source: str | None = None) -> np.ndarray:
    """``x`` as a C-contiguous ``float32 [N, C, T]`` array, or :class:`InputError`.

    Accepts ``[N, C, T]`` or one window ``[C, T]``; any floating dtype (float16/64 are cast,
    float64 values beyond float32's range become inf and so count as corrupt). Integers, bools,
    complex and object arrays are refused: CSI windows are preprocessed real amplitudes.
    """
    c, t = window_shape
    if type(x) is np.ndarray and x.dtype == np.float32 and x.ndim == 3 and x.shape[1] == c \
            and x.shape[2] == t and x.flags.c_contiguous:
        return x  # the fast path: already what the model takes
    arr = np.asarray(x)
    c, t = int(c), int(t)
    if arr.dtype.kind not in _FLOAT_KINDS:
        raise InputError(f"windows must be floating point (float32), got {arr.dtype}", source)
    if arr.ndim == 2 and arr.shape == (c, t):
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (c, t):
        raise InputError(f"expected windows of shape [N, {c}, {t}] or one window [{c}, {t}], got "
                         f"{list(arr.shape)}", source)
    if arr.dtype != np.float32:
        with np.errstate(over="ignore"):
            arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr)


def window_ok(x: np.ndarray) -> np.ndarray:
    """Boolean ``[N]``: the window passes the corruption rule.

    ``max`` is NaN when any value is NaN and inf when any is inf (``min`` likewise for -inf), so
    ``max <= 1.5 and min >= -1.5`` covers both halves of the rule. Max and min read the window
    without writing a temporary (``abs(x)`` would write one): measured after an ONNX Runtime call
    has evicted the window from cache, this halves the check's cost, which dominates the
    runtime's overhead at batch 1. No ``np.errstate``: these operations do not warn, and
    ``errstate`` costs more than the check itself.
    """
    n = x.shape[0]
    if n == 1:
        return np.array([bool(x.max() <= CORRUPT_ABS_LIMIT) and bool(x.min() >= -CORRUPT_ABS_LIMIT)])
    if n == 0:
        return np.zeros(0, dtype=bool)
    flat = x.reshape(n, -1)
    return (flat.max(axis=1) <= CORRUPT_ABS_LIMIT) & (flat.min(axis=1) >= -CORRUPT_ABS_LIMIT)


def corrupt_reason(window: np.ndarray) -> str:
    """Why one window is corrupt, as a status string (``"corrupt: ..."``)."""
    finite = np.isfinite(window)
    if not finite.all():
        return f"{CORRUPT}: {int((~finite).sum())} non-finite value(s)"
    return f"{CORRUPT}: max|x| {float(np.abs(window).max()):.3g} > {CORRUPT_ABS_LIMIT}"


def statuses(x: np.ndarray, ok: np.ndarray) -> list[str]:
    """Per-window status strings for windows ``x`` and their :func:`window_ok` mask."""
    return [OK if good else corrupt_reason(x[i]) for i, good in enumerate(ok)]


class FrameRing:
    """The last ``T`` frames of a stream, with what is known about each one.

    Each slot remembers whether its frame is a *gap* (missing and not fillable) or *bad* (fails
    the corruption rule); a missing frame within ``max_hold`` of a good one is filled with it
    (*held*). Frames are stored twice (slots ``i`` and ``i + T``) so the current window is one
    contiguous slice; counts of gap and bad slots are kept as frames come and go, so a push
    costs one frame copy and one pass over its values.
    """

    def __init__(self, channels: int, frames: int, max_hold: int) -> None:
        if not 0 <= max_hold < frames:
            raise InputError(f"max_hold must be between 0 and {frames - 1} frames, got {max_hold}")
        self.channels, self.frames, self.max_hold = channels, frames, max_hold
        self._buf = np.zeros((2 * frames, channels), dtype=np.float32)
        self._gap = [True] * frames  # nothing arrived yet
        self._bad = [False] * frames
        self._n_gap, self._n_bad = frames, 0
        self._pos = 0          # next slot to write
        self.count = 0         # frames pushed so far (received or missing)
        self._run = 0          # consecutive missing frames so far
        self._last = -1        # slot of the last good frame (-1: none to hold)

    def push(self, frame: np.ndarray | None) -> None:
        """Add one frame (``None`` = missing: held from the last good frame up to ``max_hold`` times)."""
        i, t, buf = self._pos, self.frames, self._buf
        if frame is None:
            self._run += 1
            bad = False
            gap = not (self._last >= 0 and self._run <= self.max_hold)
            if not gap:  # the last good frame is at most max_hold < T slots back: still in the buffer
                buf[i] = buf[self._last]
        else:
            self._run = 0
            gap = False
            if frame.dtype == np.float32:
                buf[i] = frame
            else:
                with np.errstate(over="ignore", invalid="ignore"):  # float64 beyond float32 → inf → bad
                    buf[i] = frame
            bad = not (np.abs(buf[i]).max() <= CORRUPT_ABS_LIMIT)  # NaN compares False
            # a corrupt frame is never held in place of a later missing one
            self._last = -1 if bad else i
        buf[i + t] = buf[i]
        self._n_gap += gap - self._gap[i]
        self._n_bad += bad - self._bad[i]
        self._gap[i], self._bad[i] = gap, bad
        self._pos = (i + 1) % t
        self.count += 1

    @property
    def full(self) -> bool:
        return self.count >= self.frames

    def status(self) -> str:
        """Status of the current window: ``ok``, ``gap: ...`` or ``corrupt: ...``."""
        if self._n_bad:
            return f"{CORRUPT}: {self._n_bad} corrupt frame(s) in the window"
        if self._n_gap:
            return f"{GAP}: {self._n_gap} missing frame(s) in the window (more than {self.max_hold} in a row)"
        return OK

    def window(self) -> np.ndarray:
        """The current window as ``float32 [C, T]``, oldest frame first (a copy)."""
        s = self._pos
        return np.ascontiguousarray(self._buf[s : s + self.frames].T)
