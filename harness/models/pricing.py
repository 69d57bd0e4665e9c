"""Price table and the cost of a usage. Unknown models are flagged, never silently priced at $0."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.config import ModelConfig, validation_message
from harness.errors import ConfigError
from harness.records import Usage


class _Rates(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    training: float | None = Field(default=None, ge=0)


class PriceEntry(_Rates):
    fine_tuned: _Rates | None = None
    as_of: str | None = None
    source: str | None = None


class PriceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    currency: str = "USD"
    unit: str = "per_1m_tokens"
    batch_discount: float | None = None
    models: dict[str, PriceEntry] = Field(default_factory=dict)


@dataclass(frozen=True)
class Price:
    """Resolved rates for one model id, USD per 1M tokens."""

    input: float
    output: float
    cached_input: float
    training: float | None
    basis: str  # table | fine-tuned table | config | self-hosted | unknown
    source: str

    @property
    def known(self) -> bool:
        return self.basis != "unknown"


UNKNOWN = Price(0.0, 0.0, 0.0, None, "unknown", "no price found")

_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def fine_tuned_base(model_id: str) -> str | None:
    """`ft:<base>:<org>[:<suffix>]:<id>` -> `<base>`."""
    if not model_id.startswith("ft:"):
        return None
    return model_id[3:].split(":", 1)[0] or None


def _read(path: Path) -> PriceFile:
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML in price table") from None
    try:
        return PriceFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc, yaml.compose(path.read_text("utf-8")))) from None


class PriceTable:
    def __init__(self, entries: dict[str, PriceEntry], sources: list[str]):
        self.entries = entries
        self.sources = sources

    @classmethod
    def load(cls, override: Path | None = None) -> PriceTable:
        builtin = resources.files("harness.models").joinpath("prices.yaml")
        with resources.as_file(builtin) as p:
            base = _read(Path(p))
        entries = dict(base.models)
        sources = ["built-in harness/models/prices.yaml"]
        if override is not None:
            entries.update(_read(override).models)
            sources.append(str(override))
        return cls(entries, sources)

    def _entry(self, model_id: str) -> tuple[str, PriceEntry] | None:
        for candidate in (model_id, _DATE_SUFFIX.sub("", model_id)):
            if candidate in self.entries:
                return candidate, self.entries[candidate]
        return None

    def lookup(self, model_id: str) -> Price:
        base = fine_tuned_base(model_id)
        if base is not None:
            found = self._entry(base)
            if found is None or found[1].fine_tuned is None:
                return UNKNOWN
            name, entry = found
            ft = entry.fine_tuned
            return Price(
                ft.input, ft.output, ft.cached_input if ft.cached_input is not None else ft.input,
                ft.training, "fine-tuned table", f"{name} fine-tuned, {entry.source or ''} {entry.as_of or ''}".strip(),
            )
        found = self._entry(model_id)
        if found is None:
            return UNKNOWN
        name, e = found
        return Price(
            e.input, e.output, e.cached_input if e.cached_input is not None else e.input,
            e.training, "table", f"{name}, {e.source or ''} {e.as_of or ''}".strip(),
        )

    def for_model(self, cfg: ModelConfig, model_id: str) -> Price:
        if cfg.price is not None:
            p = cfg.price
            return Price(p.input, p.output, p.cached_input if p.cached_input is not None else p.input,
                         None, "config", "price set in the run config")
        found = self.lookup(model_id)
        if found.known:
            return found
        if cfg.provider == "local" or cfg.price_per_hour is not None:
            why = (f"self-hosted at ${cfg.price_per_hour}/hour, costed from measured throughput"
                   if cfg.price_per_hour is not None else
                   "self-hosted, no per-token price (set price_per_hour in the model config to cost it)")
            return Price(0.0, 0.0, 0.0, None, "self-hosted", why)
        return UNKNOWN


def cost_usd(usage: Usage | None, price: Price) -> float | None:
    """Cost of one call. Cached prompt tokens are billed at the cached rate."""
    if usage is None or not price.known:
        return None
    cached = min(usage.cached_tokens or 0, usage.prompt_tokens)
    fresh = usage.prompt_tokens - cached
    return (fresh * price.input + cached * price.cached_input + usage.completion_tokens * price.output) / 1_000_000


def describe(price: Price) -> dict[str, Any]:
    return {
        "input_per_1m": price.input,
        "cached_input_per_1m": price.cached_input,
        "output_per_1m": price.output,
        "training_per_1m": price.training,
        "basis": price.basis,
        "source": price.source,
    }
