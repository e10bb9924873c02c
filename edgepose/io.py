"""Atomic writes, hashing and pickle-free reading of ``.npy``/``.npz`` files.

Every artifact edgepose writes goes through :func:`atomic_path` or :func:`atomic_dir`: the data
is written under a temporary name in the destination folder and renamed into place only when
complete, so an interrupted or failed run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgepose.errors import EdgeposeError
from edgepose.runtime.jsonable import json_default as _json_default


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; artifacts are meant to be shared
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; move it to ``path`` if the block succeeds."""
    path = Path(path)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise EdgeposeError("output folder exists and is not empty (pass --overwrite)", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp creates 0700
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")




def read_json(path: str | Path) -> Any:
    """Read a JSON file, turning a missing or malformed file into an :class:`EdgeposeError`."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise EdgeposeError("file not found", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgeposeError(f"not valid JSON ({exc})", path) from None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(data: Any) -> str:
    """Hex SHA-256 of the canonical JSON form of ``data``."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=_json_default).encode()).hexdigest()


def _read_header(f: Any) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from an open ``.npy`` stream, leaving it at the start of the data."""
    major, _minor = np.lib.format.read_magic(f)
    reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, _fortran, dtype = reader(f)
    return shape, dtype


def open_npy(path: str | Path, mmap: bool = True) -> np.ndarray:
    """Open a ``.npy`` file (memory-mapped by default) without ever unpickling.

    Raises :class:`EdgeposeError` for a missing, truncated or non-``.npy`` file.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgeposeError("file not found", path)
    try:
        with open(path, "rb") as f:
            shape, dtype = _read_header(f)
            offset = f.tell()
    except Exception as exc:  # numpy raises ValueError/EOFError/… for broken headers
        raise EdgeposeError(f"not a readable .npy file ({exc})", path) from None
    if dtype.hasobject:
        raise EdgeposeError("holds Python objects; only plain numeric arrays are accepted", path)
    expected = offset + math.prod(shape) * dtype.itemsize
    actual = path.stat().st_size
    if actual < expected:
        raise EdgeposeError(
            f"truncated: header says {shape} {dtype} ({expected} bytes) but the file has {actual}", path
        )
    try:
        if mmap and expected > offset:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        return np.load(path, allow_pickle=False)  # an empty array cannot be memory-mapped
    except Exception as exc:  # e.g. a header whose size overflows, or a file that changed meanwhile
        raise EdgeposeError(f"not a readable .npy file ({type(exc).__name__}: {exc})", path) from None


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Admits just what numpy needs to rebuild an object array; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file without executing pickle code.

    Plain arrays load normally. Object arrays (which numpy stores as pickles) are decoded by a
    restricted unpickler that admits only numpy's array reconstruction, and every element must
    then be a ``str``, ``bytes`` or ``int``; anything else is refused. A pickle that names any
    other callable is refused before anything of it runs. Every problem — not a zip file, a
    damaged or truncated member, a refused pickle — raises :class:`EdgeposeError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgeposeError("file not found", path)
    out: dict[str, np.ndarray] = {}
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise EdgeposeError(f"not a valid .npz (zip) file ({exc})", path) from None
    with zf:
        for member in zf.namelist():
            key = member[:-4] if member.endswith(".npy") else member
            try:
                raw = zf.read(member)
            except Exception as exc:  # BadZipFile (CRC), zlib.error, EOFError, NotImplementedError, …
                raise EdgeposeError(f"member {key!r} cannot be read ({type(exc).__name__}: {exc})", path) from None
            out[key] = _load_member(raw, key, path)
    return out


def _load_member(raw: bytes, key: str, path: Path) -> np.ndarray:
    """One ``.npy`` member of an ``.npz``: a plain array, or an object array of str/int only."""
    buf = io.BytesIO(raw)
    try:
        shape, dtype = _read_header(buf)
    except Exception as exc:
        raise EdgeposeError(f"member {key!r} is not a readable array ({exc})", path) from None
    if not dtype.hasobject:
        expected = buf.tell() + math.prod(shape) * dtype.itemsize
        if len(raw) < expected:
            raise EdgeposeError(
                f"member {key!r} is truncated: header says {shape} {dtype} ({expected} bytes) but it has {len(raw)}",
                path,
            )
        try:
            return np.load(io.BytesIO(raw), allow_pickle=False)
        except Exception as exc:
            raise EdgeposeError(f"member {key!r} is not a readable array ({exc})", path) from None
    try:
        arr = _ArrayOnlyUnpickler(buf).load()
    except Exception as exc:
        raise EdgeposeError(f"member {key!r} holds a pickle that was refused ({exc})", path) from None
    if not isinstance(arr, np.ndarray):
        raise EdgeposeError(f"member {key!r} did not decode to an array", path)
    flat = arr.reshape(-1)
    if not all(isinstance(v, (str, bytes, int, np.integer, np.str_)) for v in flat):
        raise EdgeposeError(f"member {key!r} holds objects other than str/int", path)
    if all(isinstance(v, (int, np.integer)) for v in flat):
        try:
            return arr.astype(np.int64)
        except OverflowError:
            raise EdgeposeError(f"member {key!r} holds an integer outside the int64 range", path) from None
    try:
        return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in flat]).reshape(arr.shape)
    except UnicodeDecodeError as exc:
        raise EdgeposeError(f"member {key!r} holds bytes that are not UTF-8 ({exc})", path) from None
