"""The ``.edgepose`` bundle: one sealed zip file, read and extracted without trusting it.

Layout (see docs/deploy.md)::

    manifest.json                   schema-versioned; sha256 + size of every other member
    model.onnx                      the artifact
    model.ort, model.required_operators.config   (optional, ``--ort``)
    golden/inputs.npy, golden/outputs.npy        plain float32 arrays (never pickles)
    artifact.card.json              the artifact's export card, verbatim

**Seal.** The zip comment is ``edgepose-bundle:1:sha256:<hex>``, the SHA-256 of every byte of
the file before the comment. Any changed byte — in a member, a header, the manifest or the seal
itself — makes the seal disagree, so a damaged copy is refused before anything is parsed. The
seal detects accidents and casual edits, not an adversary (who can reseal): compare
:func:`file_sha256` with the value ``edgepose package`` printed for authenticity.

**Reading.** :meth:`Bundle.open` checks the seal, then every entry of the zip's central
directory *before reading any content*: names must be relative, free of ``..``, backslashes
and odd characters; no links, devices, directories or encrypted entries; sizes and compression
ratios bounded (zip bombs); only ``stored`` or ``deflate``. Then the manifest must list exactly
the members present, with matching sizes and hashes. Members are read into memory; nothing is
written to disk unless :func:`extract` is asked to, and nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from edgepose.runtime.errors import BundleError
from edgepose.runtime.jsonable import json_default as _json_default

FORMAT = "edgepose-bundle"
SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
SUFFIX = ".edgepose"

_SEAL_PREFIX = b"edgepose-bundle:1:sha256:"
_SEAL_LEN = len(_SEAL_PREFIX) + 64
_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_NAME_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_MIB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Bounds a bundle must stay within before any member is decompressed."""

    max_members: int = 64
    max_member_bytes: int = 512 * _MIB
    max_total_bytes: int = 1024 * _MIB
    max_manifest_bytes: int = 4 * _MIB
    #: uncompressed/compressed ratio above which a member counts as a zip bomb …
    max_ratio: float = 100.0
    #: … once it is at least this large (small, very regular members are harmless)
    ratio_floor_bytes: int = 1 * _MIB


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a whole file (what ``edgepose package`` prints for out-of-band checks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_MIB):
            h.update(block)
    return h.hexdigest()


# -- writing -------------------------------------------------------------------------------------

def write_bundle(out: str | Path, manifest: dict, members: dict[str, bytes]) -> dict:
    """Write a sealed bundle to ``out`` (the caller makes it atomic); returns the final manifest.

    ``manifest`` gets a ``members`` table (sha256 and size of each of ``members``) and is stored
    as ``manifest.json``. Entries carry a fixed timestamp and 0644 permissions, so the same
    content gives the same bytes.
    """
    for name in members:
        _check_name(name, Path(out))
    table = {name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
             for name, data in sorted(members.items())}
    full = {**manifest, "members": table}
    payload = {MANIFEST: json.dumps(full, indent=2, default=_json_default).encode() + b"\n", **members}
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in payload.items():
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.create_system = 3
            zf.writestr(info, data)
        zf.comment = b"\0" * _SEAL_LEN  # placeholder of the seal's length; filled in below
    seal(out)
    return full


def seal(path: str | Path) -> str:
    """(Re)write the seal of a zip whose comment is exactly the seal's length; returns the hash."""
    path = Path(path)
    data = path.read_bytes()
    start = _comment_start(data, path)
    if len(data) - start != _SEAL_LEN:
        raise BundleError(f"cannot seal: the zip comment must be {_SEAL_LEN} bytes", path)
    digest = hashlib.sha256(data[:start]).hexdigest()
    with open(path, "r+b") as f:
        f.seek(start)
        f.write(_SEAL_PREFIX + digest.encode())
    return digest




# -- reading -------------------------------------------------------------------------------------

def _comment_start(data: bytes, path: Path) -> int:
    """Offset of the zip comment (the end-of-central-directory record must be the file's last)."""
    at = data.rfind(_EOCD, max(0, len(data) - _EOCD_SIZE - 0xFFFF))
    if at < 0 or at + _EOCD_SIZE > len(data):
        raise BundleError("not a bundle (no zip end record; is it a .edgepose file?)", path)
    (comment_len,) = struct.unpack("<H", data[at + 20 : at + 22])
    if at + _EOCD_SIZE + comment_len != len(data):
        raise BundleError("damaged bundle: the zip end record does not match the file length", path)
    return at + _EOCD_SIZE


def check_seal(data: bytes, path: Path) -> str:
    """Verify the seal over a bundle's bytes; returns the sealed hash or raises :class:`BundleError`."""
    start = _comment_start(data, path)
    comment = data[start:]
    if len(comment) != _SEAL_LEN or not comment.startswith(_SEAL_PREFIX):
        raise BundleError("not a sealed edgepose bundle (zip comment holds no edgepose seal)", path)
    expected = comment[len(_SEAL_PREFIX):].decode("ascii", "replace")
    actual = hashlib.sha256(data[:start]).hexdigest()
    if actual != expected:
        raise BundleError("bundle content does not match its seal (SHA-256 differs): the file was "
                          "changed or damaged after packaging; copy it again", path)
    return actual


def _check_name(name: str, path: Path) -> None:
    if not name or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise BundleError(f"member {name!r} has an absolute path; refused", path)
    if "\\" in name:
        raise BundleError(f"member {name!r} contains a backslash; refused", path)
    parts = PurePosixPath(name).parts
    if ".." in name.split("/"):
        raise BundleError(f"member {name!r} escapes the bundle folder ('..'); refused", path)
    if name.endswith("/"):
        raise BundleError(f"member {name!r} is a directory entry; bundles hold files only", path)
    if not all(_NAME_PART.match(p) for p in parts) or "/".join(parts) != name:
        raise BundleError(f"member {name!r} has an unexpected name (letters, digits, '._+-' and "
                          "'/' only); refused", path)


def _check_entry(info: zipfile.ZipInfo, path: Path, limits: Limits) -> None:
    name = info.filename
    _check_name(name, path)
    mode = info.external_attr >> 16
    if info.create_system == 3 and mode:
        if stat.S_ISLNK(mode):
            raise BundleError(f"member {name!r} is a symbolic link; refused", path)
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            raise BundleError(f"member {name!r} is a device, pipe or socket; refused", path)
        if stat.S_ISDIR(mode):
            raise BundleError(f"member {name!r} is a directory entry; bundles hold files only", path)
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise BundleError(f"member {name!r} is not a regular file; refused", path)
    if info.flag_bits & 0x1:
        raise BundleError(f"member {name!r} is encrypted; refused", path)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise BundleError(f"member {name!r} uses compression method {info.compress_type}; only stored "
                          "and deflate are accepted", path)
    cap = limits.max_manifest_bytes if name == MANIFEST else limits.max_member_bytes
    if info.file_size > cap:
        raise BundleError(f"member {name!r} is {info.file_size} bytes uncompressed, over the {cap}-byte "
                          "limit; refused", path)
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size >= limits.ratio_floor_bytes and ratio > limits.max_ratio:
        raise BundleError(f"member {name!r} expands {ratio:.0f}x ({info.compress_size} → {info.file_size} "
                          f"bytes), over the {limits.max_ratio:.0f}x limit (zip bomb?); refused", path)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    """A member's bytes, never more than its declared size (a lying header cannot inflate more)."""
    try:
        with zf.open(info) as f:
            data = f.read(info.file_size + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise BundleError(f"member {info.filename!r} cannot be read ({exc})", path) from None
    if len(data) != info.file_size:
        raise BundleError(f"member {info.filename!r} holds {len(data)} bytes, its header says "
                          f"{info.file_size}; refused", path)
    return data


def _parse_manifest(raw: bytes, path: Path) -> dict:
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"manifest.json is not valid JSON ({exc})", path) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"manifest.json is not an {FORMAT} manifest", path)
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise BundleError(f"manifest schema version {version!r} is not supported by this runtime "
                          f"(reads {SCHEMA_VERSION}); use a matching edgepose version", path)
    table = manifest.get("members")
    if not isinstance(table, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("sha256"), str) and isinstance(v.get("bytes"), int)
            for v in table.values()):
        raise BundleError("manifest.json has no valid 'members' table", path)
    return manifest


class Bundle:
    """A verified bundle held in memory: its manifest and every member's bytes."""

    def __init__(self, path: Path, manifest: dict, members: dict[str, bytes], sealed_sha256: str,
                 manifest_bytes: bytes = b"") -> None:
        self.path = path
        self.manifest = manifest
        self.manifest_bytes = manifest_bytes
        self.members = members
        self.sealed_sha256 = sealed_sha256

    @classmethod
    def open(cls, path: str | Path, limits: Limits = Limits()) -> "Bundle":
        """Read and verify a bundle (seal, entries, manifest, every member's size and SHA-256).

        Raises :class:`BundleError` naming the file and the first problem found.
        """
        path = Path(path)
        if not path.is_file():
            raise BundleError("bundle not found", path)
        size = path.stat().st_size
        if size > limits.max_total_bytes:
            raise BundleError(f"bundle is {size} bytes, over the {limits.max_total_bytes}-byte limit", path)
        data = path.read_bytes()
        digest = check_seal(data, path)
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
            raise BundleError(f"not a readable zip archive ({exc})", path) from None
        with zf:
            infos = zf.infolist()
            if len(infos) > limits.max_members:
                raise BundleError(f"bundle has {len(infos)} members, over the limit of {limits.max_members}", path)
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise BundleError("bundle lists a member name twice; refused", path)
            for info in infos:
                _check_entry(info, path, limits)
            total = sum(i.file_size for i in infos)
            if total > limits.max_total_bytes:
                raise BundleError(f"members total {total} bytes uncompressed, over the "
                                  f"{limits.max_total_bytes}-byte limit", path)
            by_name = {i.filename: i for i in infos}
            if MANIFEST not in by_name:
                raise BundleError("bundle has no manifest.json", path)
            raw_manifest = _read_member(zf, by_name[MANIFEST], path)
            manifest = _parse_manifest(raw_manifest, path)
            listed = manifest["members"]
            for name in listed:
                _check_name(name, path)
            unlisted = sorted(set(by_name) - set(listed) - {MANIFEST})
            if unlisted:
                raise BundleError(f"member {unlisted[0]!r} is not listed in manifest.json; refused", path)
            missing = sorted(set(listed) - set(by_name))
            if missing:
                raise BundleError(f"member {missing[0]!r} is listed in manifest.json but missing", path)
            members = {}
            for name, entry in listed.items():
                raw = _read_member(zf, by_name[name], path)
                if len(raw) != entry["bytes"] or hashlib.sha256(raw).hexdigest() != entry["sha256"]:
                    raise BundleError(f"member {name!r} does not match manifest.json (SHA-256 or size "
                                      "differs); the bundle was changed after packaging", path)
                members[name] = raw
        return cls(path, manifest, members, digest, raw_manifest)

    def read(self, name: str) -> bytes:
        """A member's verified bytes."""
        try:
            return self.members[name]
        except KeyError:
            raise BundleError(f"bundle has no member {name!r}", self.path) from None

    def array(self, name: str) -> np.ndarray:
        """A ``.npy`` member as a plain numeric array (``allow_pickle=False``; object arrays refused)."""
        try:
            arr = np.load(io.BytesIO(self.read(name)), allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            raise BundleError(f"member {name!r} is not a plain .npy array ({exc})", self.path) from None
        if arr.dtype.hasobject:
            raise BundleError(f"member {name!r} holds Python objects; refused", self.path)
        return arr


def extract(path: str | Path, dest: str | Path, limits: Limits = Limits()) -> list[Path]:
    """Verify a bundle and write its members (and ``manifest.json``) under ``dest``.

    ``dest`` must not exist or be empty. Files are written into a temporary folder beside it
    (exclusive creation, no link following) and the folder is renamed into place when complete.
    Returns the written paths.
    """
    bundle = Bundle.open(path, limits)
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BundleError("extraction folder exists and is not empty", dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        written = []
        for name, data in {MANIFEST: bundle.manifest_bytes, **bundle.members}.items():
            target = tmp.joinpath(*PurePosixPath(name).parts)
            if os.path.commonpath([tmp.resolve(), target.parent.resolve()]) != str(tmp.resolve()):
                raise BundleError(f"member {name!r} would land outside the extraction folder", path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            written.append(dest / name)
        os.chmod(tmp, 0o755)
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
        return written
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
