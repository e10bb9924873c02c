"""The pretrained model zoo and the rules that find a checkpoint's dataset.

The repository's ``models/`` folder holds trained checkpoints (``NAME.safetensors`` + the JSON
card ``NAME.json``). This module lists them, resolves names to files and finds the data a
checkpoint belongs to — regenerating the synthetic default set from the generator config the
card records when it is not on disk — without importing torch.

Public functions:

* :func:`list_pretrained` — every zoo entry with its headline figures;
* :func:`resolve_checkpoint` — ``"wiflow-half"``, ``"models/wiflow-half"`` or a path → weights path;
* :func:`default_dataset` — regenerate (or reuse from the cache) the synthetic set a card names
  and check its fingerprint;
* :func:`resolve_dataset` — the dataset folder to use for a checkpoint, given an optional
  ``--data``, with the fingerprint rules of calibration (warn) and locked scoring (refuse).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from edgepose.errors import EdgeposeError
from edgepose.io import read_json

log = logging.getLogger(__name__)

#: Environment variable naming another zoo folder (default: ``models/`` of the repository).
MODELS_ENV = "EDGEPOSE_MODELS"
#: Environment variable naming the dataset cache root (default: ``~/.cache/edgepose/data``).
CACHE_ENV = "EDGEPOSE_CACHE"
#: Purposes for which data other than the checkpoint's own is allowed with a warning.
LENIENT_PURPOSES = frozenset({"calibration", "calibrate"})

_CARD_FORMAT = "edgepose-checkpoint"


@dataclass(frozen=True)
class PretrainedEntry:
    """One checkpoint of the zoo.

    Attributes:
        name: the file stem (``wiflow-half``).
        path: the weights file (``…/models/wiflow-half.safetensors``).
        params: parameter count from the card.
        pck20: PCK@20 on the clean test split of the training dataset (fraction, 0–1).
        mean_pose_pck20: the mean-pose baseline's PCK@20 on the same windows.
        card: the whole JSON card.
    """

    name: str
    path: Path
    params: int
    pck20: float
    mean_pose_pck20: float
    card: dict

    @property
    def model(self) -> str:
        return self.card.get("model", self.name)


def models_dir() -> Path:
    """The zoo folder: ``$EDGEPOSE_MODELS`` if set, else ``models/`` beside the package."""
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env).expanduser()
    import edgepose

    return Path(edgepose.__file__).resolve().parent.parent / "models"


def _pck(scores: dict | None, t: float = 0.2) -> float:
    """PCK at ``t`` from a metrics dict whose keys may be floats or their JSON strings."""
    if not isinstance(scores, dict):
        return float("nan")
    table = scores.get("pck", {})
    for k, v in table.items():
        try:
            if abs(float(k) - t) < 1e-9:
                return float(v)
        except (TypeError, ValueError):
            continue
    return float("nan")


def _read_card(path: Path) -> dict:
    card = read_json(path)
    if not isinstance(card, dict) or card.get("format") != _CARD_FORMAT:
        raise EdgeposeError("not an edgepose checkpoint card", path)
    return card


def list_pretrained(root: str | Path | None = None) -> list[PretrainedEntry]:
    """Every ``*.json`` checkpoint card in the zoo folder with its weights beside it, by name.

    Cards that are not checkpoint cards, or whose weights file is missing, are skipped (with a
    log message); an absent zoo folder gives an empty list.
    """
    root = Path(root) if root is not None else models_dir()
    if not root.is_dir():
        return []
    entries = []
    for card_path in sorted(root.glob("*.json")):
        try:
            card = _read_card(card_path)
        except EdgeposeError as exc:
            log.debug("skipping %s (%s)", card_path, exc)
            continue
        weights = card_path.with_name(card.get("weights_file") or card_path.stem + ".safetensors")
        if not weights.is_file():
            log.warning("zoo card %s has no weights file %s", card_path, weights.name)
            continue
        test = card.get("metrics", {}).get("test", {})
        entries.append(PretrainedEntry(
            name=card_path.stem, path=weights, params=int(card.get("param_count", 0)),
            pck20=_pck(test.get("clean")), mean_pose_pck20=_pck(test.get("mean_pose")), card=card))
    return entries


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """The weights path of a checkpoint given as a zoo name, a path with or without suffix.

    Accepts ``wiflow-half`` (zoo name), ``models/wiflow-half`` (relative or absolute, no suffix),
    ``….safetensors`` or ``….json`` (its card), or a training run folder (its ``best``).
    """
    p = Path(name_or_path).expanduser()
    candidates: list[Path] = []
    if p.is_dir():
        candidates.append(p / "best.safetensors")
    elif p.suffix in (".safetensors", ".json"):
        candidates.append(p.with_suffix(".safetensors"))
    else:
        candidates.append(p.with_name(p.name + ".safetensors"))
        if len(p.parts) == 1:  # a bare name: the zoo
            candidates.append(models_dir() / f"{p.name}.safetensors")
    for c in candidates:
        if c.is_file() and c.with_suffix(".json").is_file():
            return c.resolve()
    names = ", ".join(e.name for e in list_pretrained()) or "none installed"
    raise EdgeposeError(f"no checkpoint (weights + .json card) found; tried {', '.join(map(str, candidates))}; "
                        f"pretrained models: {names}", name_or_path)


def _card_of(card: dict | str | Path) -> dict:
    if isinstance(card, dict):
        return card
    return _read_card(resolve_checkpoint(card).with_suffix(".json"))


def _fingerprint(path: Path) -> str:
    from edgepose.data import open_dataset

    return open_dataset(path).fingerprint


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """Where regenerated datasets live: ``cache_dir``, ``$EDGEPOSE_CACHE`` or ``~/.cache/edgepose/data``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgepose" / "data"


def default_dataset(card: dict | str | Path, cache_dir: str | Path | None = None) -> Path:
    """Regenerate the synthetic dataset a checkpoint was trained on, or reuse the cached copy.

    ``card`` is a checkpoint card (dict) or anything :func:`resolve_checkpoint` accepts. The card
    must record the generator config (``dataset.synth.config``, written by the trainer for every
    synthetic set). The data goes to ``<cache>/<fingerprint[:12]>``; its fingerprint is checked
    against the card's, and a mismatch is an :class:`EdgeposeError` naming both.
    """
    from edgepose.data.synth import SynthConfig, synthesize
    from edgepose.data.synth.generate import GENERATOR_VERSIONS

    card = _card_of(card)
    ds = card.get("dataset") or {}
    want = ds.get("fingerprint")
    synth = ds.get("synth")
    if not want or not isinstance(synth, dict) or not isinstance(synth.get("config"), dict):
        raise EdgeposeError("the checkpoint card records no synthetic-generator config, so its dataset cannot be "
                            f"regenerated (dataset fingerprint {want or 'unknown'}); pass --data DIR")
    target = cache_root(cache_dir) / want[:12]
    if not (target / "synth_meta.json").is_file():
        version = synth.get("generator_version")
        if version is not None and version not in GENERATOR_VERSIONS:
            raise EdgeposeError(f"the card's dataset was made by synthetic generator v{version}, this install has "
                                f"v{', v'.join(map(str, GENERATOR_VERSIONS))}; it cannot be regenerated bit-exactly "
                                f"(fingerprint {want}); pass --data DIR")
        conf = dict(synth["config"])
        # cards written before versions were a config field hold version 1's config
        conf.setdefault("generator_version", version if version is not None else 1)
        layout = conf.pop("layout", None) or synth.get("layout") or "wiflow"
        if "activities" in conf:
            conf["activities"] = tuple(conf["activities"])
        try:
            cfg = SynthConfig(**conf)
        except TypeError as exc:
            raise EdgeposeError(f"the card's synthetic config does not fit this generator ({exc})") from None
        log.info("regenerating the dataset with fingerprint %s into %s", want[:12], target)
        target.parent.mkdir(parents=True, exist_ok=True)
        synthesize(target, cfg, overwrite=target.exists(), layout=layout)
    got = _fingerprint(target)
    if got != want:
        raise EdgeposeError(f"regenerated dataset fingerprint {got} differs from the card's {want} "
                            "(generator or numpy changed?); pass --data DIR with the original data", target)
    return target


def resolve_dataset(card: dict | str | Path, data: str | Path | None, purpose: str,
                    allow_other_data: bool = False, cache_dir: str | Path | None = None) -> Path:
    """The dataset folder to use with a checkpoint.

    Args:
        card: the checkpoint card (dict), or anything :func:`resolve_checkpoint` accepts.
        data: the user's ``--data`` folder, or ``None``.
        purpose: what the data is for. ``"calibration"`` (or ``"calibrate"``) tolerates other
            data with a logged warning; any other purpose (``"scoring"``, ``"eval"``,
            ``"bench"``, …) is locked scoring and refuses it unless ``allow_other_data``.
        allow_other_data: accept a ``--data`` whose fingerprint differs (with a warning).
        cache_dir: where :func:`default_dataset` regenerates the synthetic default.

    With ``data``: its fingerprint is compared with the card's. Without: the card's absolute
    dataset path when it still exists (and matches), else the regenerated synthetic dataset when
    the card records its generator config, else an :class:`EdgeposeError` naming the fingerprint
    and asking for ``--data DIR``.
    """
    card = _card_of(card)
    ds = card.get("dataset") or {}
    want = ds.get("fingerprint")
    if data is not None:
        data = Path(data).expanduser()
        got = _fingerprint(data)
        if want and got != want:
            msg = (f"dataset fingerprint {got[:12]}… differs from the checkpoint's training data {want[:12]}… "
                   f"(used for {purpose})")
            if purpose in LENIENT_PURPOSES or allow_other_data:
                log.warning("%s: %s", data, msg)
            else:
                raise EdgeposeError(msg + "; locked scoring needs the checkpoint's own dataset — pass the matching "
                                    "--data DIR or --allow-other-data", data)
        return data
    recorded = ds.get("path")
    if recorded:
        p = Path(recorded).expanduser()
        if p.is_dir():
            try:
                got = _fingerprint(p)
            except EdgeposeError as exc:
                log.warning("recorded dataset %s is unreadable (%s)", p, exc)
                got = None
            if got is not None and (not want or got == want):
                return p.resolve()
            if got is not None:
                log.warning("recorded dataset %s has fingerprint %s, the card wants %s; looking elsewhere", p, got[:12],
                            want[:12])
    if isinstance(ds.get("synth"), dict):
        return default_dataset(card, cache_dir)
    raise EdgeposeError(f"the checkpoint's dataset (fingerprint {want or 'unknown'}) is not at "
                        f"{recorded or 'a recorded path'} and cannot be regenerated; pass --data DIR")


__all__ = ["CACHE_ENV", "MODELS_ENV", "PretrainedEntry", "cache_root", "default_dataset", "list_pretrained",
           "models_dir", "resolve_checkpoint", "resolve_dataset"]
