"""The bodies of ``infer`` and ``verify``, shared by ``python -m edgepose.runtime`` and ``edgepose``.

Input (``--input``):

* ``windows.npy`` ``[N, C, T]`` (or one window ``[C, T]``) → one result per window;
* ``frames.npy`` ``[F, C]`` → a stream: one result every ``hop`` frames (see ``Predictor.stream``);
* ``-`` → frames on standard input, one per line: a JSON array or comma/space-separated numbers
  (``nan``/``inf`` allowed, they make the windows that hold them corrupt); an empty line is a
  missing frame. Results are written as each pose is made.

Output (``--output``): ``-`` or ``*.jsonl`` → one JSON object per line ``{"window"|"frame",
"status", "keypoints"}`` (``keypoints`` is ``null`` unless ``status`` is ``"ok"``); ``*.npy`` →
``float32 [N, J, 2]`` with NaN rows where no pose was made (for frames, result ``e`` ends at
frame ``T - 1 + e·hop``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Callable

import numpy as np

from edgepose.runtime.errors import InputError
from edgepose.runtime.parallel import DEFAULT_PARALLEL
from edgepose.runtime.predictor import Predictor
from edgepose.runtime.verify import verify

NPY_SUFFIXES = (".npy",)
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_npy(path: Path) -> np.ndarray:
    """A plain numeric ``.npy`` file (never unpickled), or :class:`InputError` naming it."""
    if not path.is_file():
        raise InputError("input file not found", path)
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise InputError("not a .npy file (expected windows [N, C, T] or frames [F, C])", path)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"not a readable .npy file ({exc})", path) from None
    if not isinstance(arr, np.ndarray) or arr.dtype.hasobject:
        raise InputError("not a plain numeric array", path)
    return arr


def parse_frame(line: str, lineno: int, channels: int, lenient: bool = False) -> np.ndarray | None:
    """One stdin line as a ``[C]`` frame; ``None`` for an empty line (a missing frame).

    A line that is not ``C`` numbers is an :class:`InputError`, or with ``lenient`` a frame of
    NaN (so the windows that hold it are reported corrupt) and a warning on stderr.
    """
    text = line.strip()
    if not text:
        return None
    try:
        if text.startswith("["):
            arr = np.asarray(json.loads(text), dtype=np.float64)
        else:
            arr = np.array(text.replace(",", " ").split(), dtype=np.float64)
        if arr.shape != (channels,):
            raise ValueError(f"{arr.size} values, expected {channels}")
        return arr
    except (ValueError, TypeError) as exc:
        problem = f"stdin line {lineno}: not a frame of {channels} numbers ({str(exc)[:120]})"
        if not lenient:
            raise InputError(problem) from None
        print(f"warning: {problem}; counted as a corrupt frame", file=sys.stderr)
        return np.full(channels, np.nan)


def _stdin_frames(stream: IO[str], channels: int, lenient: bool) -> Iterator[np.ndarray | None]:
    for lineno, line in enumerate(stream, 1):
        yield parse_frame(line, lineno, channels, lenient)


def _records(pred: Predictor, source: str, stdin: IO[str], hop: int | None, lenient: bool) -> Iterator[dict]:
    c, t = pred.window_shape
    if source == "-":
        for pose in pred.stream(_stdin_frames(stdin, c, lenient), hop=hop):
            yield pose.record()
        return
    path = Path(source)
    arr = read_npy(path)
    if arr.ndim == 2 and arr.shape[1] == c and arr.shape != (c, t):
        for pose in pred.stream((np.asarray(f) for f in arr), hop=hop):
            yield pose.record()
        return
    if arr.ndim not in (2, 3):
        raise InputError(f"expected windows [N, {c}, {t}], one window [{c}, {t}] or frames [F, {c}], "
                         f"got {list(arr.shape)}", path)
    chunks = [arr] if arr.ndim == 2 else (arr[i : i + 1024] for i in range(0, len(arr), 1024))
    start = 0
    try:
        for chunk in chunks:
            result = pred.predict(np.asarray(chunk))
            yield from result.records(start)
            start += len(result)
    except InputError as exc:
        raise InputError(exc.problem, path) from None


def infer(bundle: str | Path, source: str, output: str, hop: int | None = None, threads: int | None = None,
          providers: list[str] | None = None, ort_format: bool = False, lenient: bool = False,
          stdin: IO[str] | None = None, stdout: IO[str] | None = None, parallel: str = DEFAULT_PARALLEL) -> dict:
    """Run a bundle over windows, frames or stdin and write the results; returns counts by status."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    out_path = None if output == "-" else Path(output)
    if out_path is not None and not out_path.name.endswith(NPY_SUFFIXES + JSONL_SUFFIXES):
        raise InputError("output must end in .npy or .jsonl (or be - for standard output)", out_path)
    pred = Predictor.load(bundle, providers=providers, threads=threads, ort_format=ort_format, parallel=parallel)
    counts: dict[str, int] = {}

    def tally(rec: dict) -> dict:
        key = rec["status"].split(":", 1)[0]
        counts[key] = counts.get(key, 0) + 1
        return rec

    records = (tally(r) for r in _records(pred, source, stdin, hop, lenient))
    if out_path is None:
        try:
            for rec in records:
                stdout.write(json.dumps(rec) + "\n")
                stdout.flush()
        except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
            pass
    elif out_path.name.endswith(NPY_SUFFIXES):
        rows = [np.asarray(r["keypoints"], dtype=np.float32) if r["keypoints"] is not None
                else np.full((len(pred.joints), 2), np.nan, dtype=np.float32) for r in records]
        arr = np.stack(rows) if rows else np.zeros((0, len(pred.joints), 2), dtype=np.float32)
        _atomic_write(out_path, lambda f: np.save(f, arr, allow_pickle=False))
    else:
        def write(f):
            for rec in records:
                f.write((json.dumps(rec) + "\n").encode())
        _atomic_write(out_path, write)
    return counts


def summary_line(counts: dict, output: str) -> str:
    total = sum(counts.values())
    parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: kv[0] != "ok"))
    return f"infer: {total} result(s): {parts or 'none'} → {'stdout' if output == '-' else output}"


def run_verify(bundle: str | Path, threads: int | None = None, providers: list[str] | None = None,
               seconds: float = 2.0, max_slowdown: float | None = None, as_json: bool = False,
               out: IO[str] | None = None, parallel: str = DEFAULT_PARALLEL) -> int:
    """Verify and print (checks then the verdict line, or JSON); returns the exit code (0 pass, 1 fail)."""
    out = out or sys.stdout
    report = verify(bundle, threads=threads, providers=providers, seconds=seconds, max_slowdown=max_slowdown,
                    parallel=parallel)
    if as_json:
        out.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        for c in report.checks:
            out.write(f"  [{'ok' if c.passed else 'FAIL'}] {c.name}: {c.detail}\n")
        out.write(report.verdict + "\n")
    return 0 if report.passed else 1
