"""Model registry: named variants with fixed configurations and checked parameter counts."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from torch import nn

from edgepose.errors import EdgeposeError


@dataclass(frozen=True)
class ModelEntry:
    """One registered variant: a builder, its default config and the parameter count it must have."""

    name: str
    builder: Callable[..., nn.Module]
    config: object
    params: int
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    if entry.name in _REGISTRY:
        raise ValueError(f"model {entry.name!r} is registered twice")
    _REGISTRY[entry.name] = entry
    return entry


def list_models() -> list[str]:
    """Registered variant names, sorted."""
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise EdgeposeError(f"unknown model {name!r}; choose from {', '.join(list_models())}") from None


def model_config(name: str, **overrides):
    """The variant's config with ``overrides`` applied (e.g. ``in_channels=342``)."""
    entry = get_entry(name)
    try:
        return replace(entry.config, **overrides)
    except TypeError as exc:
        raise EdgeposeError(f"bad override for {name}: {exc}") from None


def create(name: str, **overrides) -> nn.Module:
    """Build a registered variant; keyword overrides change its config (channels, window, joints…)."""
    return get_entry(name).builder(model_config(name, **overrides))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
