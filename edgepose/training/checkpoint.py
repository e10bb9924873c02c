"""Checkpoints without pickle: weights in safetensors, everything else in a JSON card.

A checkpoint is a pair ``NAME.safetensors`` + ``NAME.json``. The card records the variant and
its config, the training config, dataset and split fingerprints, metrics, versions and the
SHA-256 of the weights file, which loading verifies. The resumable training state (``last``)
stores optimizer moments and the torch RNG state as tensors in the same way.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from edgepose.version import tool_versions
from edgepose.errors import EdgeposeError
from edgepose.io import atomic_path, read_json, sha256_file, write_json
from edgepose.models import count_params, get_entry
from edgepose.models.wiflow import WiFlowConfig

CARD_FORMAT = "edgepose-checkpoint"
CARD_VERSION = 1


def versions() -> dict:
    """Library versions recorded in every checkpoint card."""
    return tool_versions("torch", "numpy")


def _pair(path: str | Path) -> tuple[Path, Path]:
    """(weights, card) paths from a run folder, a ``.safetensors`` or a ``.json`` path."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.safetensors"
    base = path.name[: -len(path.suffix)] if path.suffix in (".safetensors", ".json") else path.name
    return path.with_name(base + ".safetensors"), path.with_name(base + ".json")


def save_checkpoint(path: str | Path, model: nn.Module, card: dict) -> Path:
    """Write ``model``'s weights and ``card`` atomically; returns the weights path."""
    weights, card_path = _pair(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp))
        digest = sha256_file(tmp)
        size = tmp.stat().st_size
    write_json(card_path, {"format": CARD_FORMAT, "version": CARD_VERSION, **card, "weights_sha256": digest,
                           "weights_file": weights.name, "weights_bytes": size})
    return weights


def read_card(path: str | Path) -> dict:
    """The JSON card of a checkpoint (validated for format)."""
    _, card_path = _pair(path)
    card = read_json(card_path)
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise EdgeposeError("not an edgepose checkpoint card", card_path)
    return card


def load_checkpoint(path: str | Path, expect_model: str | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint describes and load its weights (eval mode).

    Verifies the weights hash against the card, the variant against ``expect_model`` and every
    tensor name and shape against the variant; any mismatch is an :class:`EdgeposeError`.
    """
    weights, card_path = _pair(path)
    card = read_card(card_path)
    if not weights.is_file():
        raise EdgeposeError("weights file not found (expected beside its card)", weights)
    if card.get("weights_sha256") and sha256_file(weights) != card["weights_sha256"]:
        raise EdgeposeError(f"weights do not match the card {card_path.name} (SHA-256 differs)", weights)
    name = card.get("model")
    if expect_model and name != expect_model:
        raise EdgeposeError(f"checkpoint is {name!r}, expected {expect_model!r}", card_path)
    entry = get_entry(name)
    try:
        cfg = WiFlowConfig.from_dict(card["model_config"])
    except (KeyError, TypeError) as exc:
        raise EdgeposeError(f"model_config is missing or malformed ({exc})", card_path) from None
    structural = ("tcn_channels", "tcn_depthwise", "tcn_input_groups", "conv_widths", "attn_groups", "decoder_width")
    differs = [k for k in structural if getattr(cfg, k) != getattr(entry.config, k)]
    if differs:
        raise EdgeposeError(f"card names variant {name!r} but its model_config differs in {', '.join(differs)}; "
                            f"weights do not fit variant {name!r}", card_path)
    model = entry.builder(cfg)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise EdgeposeError(f"not a readable safetensors file ({exc})", weights) from None
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    bad = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or extra or bad:
        detail = "; ".join(filter(None, [
            f"missing {missing[:3]}" if missing else "", f"unexpected {extra[:3]}" if extra else "",
            f"shape mismatch {bad[:3]}" if bad else ""]))
        raise EdgeposeError(f"weights do not fit variant {name!r} ({detail})", weights)
    model.load_state_dict(state)
    return model.eval(), card


# -- resumable training state -------------------------------------------------------------------

def save_train_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, meta: dict) -> None:
    """Model, optimizer moments and RNG state as tensors; scalars (epoch, scheduler…) in JSON."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for pid, st in opt["state"].items():
        for k, v in st.items():
            tensors[f"optim.{pid}.{k}"] = (v if torch.is_tensor(v) else torch.tensor(v)).detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    with atomic_path(path.with_suffix(".safetensors")) as tmp:
        save_file(tensors, str(tmp))
    write_json(path.with_suffix(".json"), {**meta, "param_groups": opt["param_groups"]})


def load_train_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Inverse of :func:`save_train_state`; returns the JSON meta."""
    meta = read_json(path.with_suffix(".json"))
    try:
        tensors = load_file(str(path.with_suffix(".safetensors")))
    except (SafetensorError, OSError, FileNotFoundError) as exc:
        raise EdgeposeError(f"cannot read training state ({exc})", path.with_suffix(".safetensors")) from None
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    return meta


def describe_model(name: str, model: nn.Module) -> dict:
    """Variant name, its config and parameter count for cards."""
    return {"model": name, "model_config": model.cfg.to_dict(), "param_count": count_params(model)}


__all__ = ["describe_model", "load_checkpoint", "load_train_state", "read_card", "save_checkpoint",
           "save_train_state", "versions"]
