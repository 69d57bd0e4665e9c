"""`scorer:` names -> scorer classes, and the task's `scoring:` list -> bound scorers.

The registry is a plain dict built per call (as pydantic_evals does), not a global that imports mutate: a test
or a caller can pass its own with extra scorers, and nothing registered in one place leaks into another.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from harness.scoring.base import RESERVED_NAMES, ScorerSpec, TaskInfo

Registry = dict[str, type[ScorerSpec]]


def builtin_registry() -> Registry:
    from harness.scoring import builtin, judge, python_scorer

    return {
        "exact": builtin.Exact,
        "partial": builtin.Partial,
        "f1": builtin.F1,
        "number": builtin.Number,
        "contains": builtin.Contains,
        "regex": builtin.Regex,
        "similarity": builtin.Similarity,
        "judge": judge.Judge,
        "python": python_scorer.Python,
    }


class ScoringError(ValueError):
    """A `scoring:` entry that cannot be used; `loc` is where in task.yaml (for the line number)."""

    def __init__(self, loc: tuple[Any, ...], message: str):
        super().__init__(message)
        self.loc = loc


def build_scorers(entries: list[Any], task: TaskInfo, registry: Registry | None = None) -> list[ScorerSpec]:
    """Validate and bind every entry. Raises ScoringError (with the entry's location) or ValidationError
    (whose locations are relative to the entry; the caller prefixes them)."""
    registry = registry if registry is not None else builtin_registry()
    out: list[ScorerSpec] = []
    names: set[str] = set()
    for i, raw in enumerate(entries):
        if not isinstance(raw, dict):
            raise ScoringError(("scoring", i), "each scorer is a mapping such as {name: labels, scorer: f1, field: x}")
        scorer = raw.get("scorer")
        if scorer not in registry:
            raise ScoringError(("scoring", i, "scorer"), f"unknown scorer {scorer!r} (known: {', '.join(registry)})")
        try:
            spec = registry[scorer].model_validate(raw)
        except ValidationError as exc:
            raise EntryValidationError(("scoring", i), exc, scorer, list(registry[scorer].model_fields)) from None
        if spec.name in RESERVED_NAMES:
            raise ScoringError(("scoring", i, "name"), f"name {spec.name!r} is taken by a built-in score "
                                                       f"({', '.join(sorted(RESERVED_NAMES))}); pick another")
        if spec.name in names:
            raise ScoringError(("scoring", i, "name"), f"duplicate scorer name {spec.name!r}")
        names.add(spec.name)
        try:
            spec.bind(task)
        except ValueError as exc:
            raise ScoringError(("scoring", i), f"scorer {spec.name!r} ({scorer}): {exc}") from None
        out.append(spec)
    return out


class EntryValidationError(Exception):
    """A pydantic error inside one entry, with the entry's location to prefix and the keys it allows."""

    def __init__(self, prefix: tuple[Any, ...], error: ValidationError, kind: str, allowed: list[str]):
        super().__init__(str(error))
        self.prefix = prefix
        self.error = error
        self.kind = kind
        self.allowed = allowed
