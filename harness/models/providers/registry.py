"""Providers by name. A provider module registers its class with `@register`; the config, the planner and
the client find it with `provider_class(name)` or `provider_for(model_config)`."""

from __future__ import annotations

from typing import TypeVar

from harness.models.providers.base import ModelSettings, Provider

P = TypeVar("P", bound=type[Provider])

PROVIDERS: dict[str, type[Provider]] = {}


def register(cls: P) -> P:
    """Make a Provider subclass known by its `name` (a class decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no provider name")
    known = PROVIDERS.get(cls.name)
    if known is not None and known is not cls:
        raise ValueError(f"provider {cls.name!r} is already registered ({known.__module__}.{known.__name__})")
    PROVIDERS[cls.name] = cls
    return cls


def provider_names() -> list[str]:
    return sorted(PROVIDERS)


def provider_class(name: str) -> type[Provider]:
    """The class registered as `name`; a ValueError listing the valid names when there is none."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise ValueError(f"unknown provider {name!r} (valid: {', '.join(provider_names())})") from None


def find_provider(name: str | None) -> type[Provider] | None:
    """The class registered as `name`, or None (a provider recorded in an old run folder may be gone)."""
    return PROVIDERS.get(name) if name else None


def provider_for(cfg: ModelSettings) -> Provider:
    """The provider of one model, reading that model's config."""
    return provider_class(cfg.provider)(cfg)


def _listed(keys: tuple[str, ...]) -> str:
    return keys[0] if len(keys) == 1 else ", ".join(keys[:-1]) + " and " + keys[-1]


def check_settings(cfg: ModelSettings) -> None:
    """What a model's config is checked for: what its provider needs, then no key of another provider's
    (ValueError, one line)."""
    provider_for(cfg).check()
    for other in PROVIDERS.values():
        if other.name != cfg.provider and any(getattr(cfg, key, None) for key in other.own_keys):
            raise ValueError(f"{_listed(other.own_keys)} apply only to provider: {other.name}")
