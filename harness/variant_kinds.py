"""Variant kinds by name: the one registry the config, the runner and `harness finetune` ask.

A kind is a class in harness/prompts/kinds/ (one module each): its parameters, how it renders an item's
messages, what it prepares once before the first call, why it must be skipped. This table sits below those
classes, at the config level, so that VariantConfig can ask a kind to validate its own fields while the config
still imports nothing above it: the built-in kinds are named here by module and imported on first lookup, and
a test or a plugin adds its own class with `register`. Adding a built-in kind is its module plus one line in
BUILTIN.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, ClassVar, Protocol, TypeVar

BUILTIN: dict[str, str] = {
    "baseline": "harness.prompts.kinds.baseline:Baseline",
    "few_shot": "harness.prompts.kinds.few_shot:FewShot",
    "rag": "harness.prompts.kinds.rag:Rag",
    "fine_tuned": "harness.prompts.kinds.fine_tuned:FineTuned",
}


class KindClass(Protocol):
    """What the layers below the prompts ask a kind (harness.prompts.kinds.base.VariantKind has the rest)."""

    name: ClassVar[str]
    trains: ClassVar[bool]  # `harness finetune` builds training data for a variant of this kind
    renders_training_prompt: ClassVar[bool]  # its prompt is the training data's prompt, without the answer
    paired_reference: ClassVar[bool]  # the variant the others are compared with (the report's paired tests)

    @classmethod
    def check_config(cls, variant: Any) -> None: ...


class UnknownKind(ValueError):
    """A kind name nobody registered; the message lists the valid names."""


_classes: dict[str, Any] = {}
K = TypeVar("K")


def names() -> list[str]:
    """Every kind a config may name."""
    return sorted({*BUILTIN, *_classes})


def kind_class(name: str) -> KindClass:
    """The class of the kind `name`; UnknownKind (a ValueError naming the valid kinds) when there is none."""
    cls = _classes.get(name)
    if cls is None and name in BUILTIN:
        module, _, attr = BUILTIN[name].partition(":")
        cls = _classes[name] = getattr(import_module(module), attr)
    if cls is None:
        raise UnknownKind(f"unknown variant kind {name!r} (valid: {', '.join(names())})")
    return cls


def register(cls: K) -> K:
    """Make a kind class known by its `name` (usable as a class decorator). A name is registered once."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls!r}: a variant kind needs a class attribute `name`")
    if (name in BUILTIN and BUILTIN[name] != f"{cls.__module__}:{cls.__qualname__}") or \
            _classes.get(name, cls) is not cls:
        raise ValueError(f"variant kind {name!r} is already registered")
    _classes[name] = cls
    return cls


def unregister(name: str) -> None:
    """Forget a kind registered with `register` (a test's own kind, when the test ends)."""
    if name in BUILTIN:
        raise ValueError(f"variant kind {name!r} is built in")
    _classes.pop(name, None)


# -- questions about a saved run's kinds, asked by name ------------------------------------------------------------


def _known(name: Any) -> KindClass | None:
    """The kind registered under `name`, or None for a name this installation does not know (a saved run's)."""
    return kind_class(name) if isinstance(name, str) and name in names() else None


def trains(name: Any) -> bool:
    """A variant of this kind is a trained model (`harness finetune` builds its training data)."""
    kind = _known(name)
    return kind is not None and kind.trains


def paired_reference(name: Any) -> bool:
    """A variant of this kind is what the other variants are compared with (baseline)."""
    kind = _known(name)
    return kind is not None and kind.paired_reference
