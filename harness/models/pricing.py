"""Price table and the cost of a usage. Unknown models are flagged, never silently priced at $0."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness import clock
from harness.config import ModelConfig, validation_message
from harness.errors import ConfigError, read_utf8
from harness.models.lifecycle import NewJobs, lifecycle_of
from harness.models.model_ids import fine_tuned_base
from harness.models.providers import provider_for
from harness.records import Usage

STALE_AFTER_DAYS = 180
_AS_OF = r"^\d{4}-\d{2}(-\d{2})?$"  # the day the price was read: 2026-11-24, or a month: 2026-06


class _Rates(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    training: float | None = Field(default=None, ge=0)  # USD per 1M training tokens
    training_per_hour: float | None = Field(default=None, ge=0)  # reinforcement fine-tuning bills hours


class _FineTunedRates(_Rates):
    # Fine-tuning prices may come from another source (and date) than the base model's.
    as_of: str | None = Field(default=None, pattern=_AS_OF)
    source: str | None = None
    new_jobs: NewJobs | None = None  # until when new fine-tuning jobs can be created (harness.models.lifecycle)


class _BatchRates(BaseModel):
    """Batch API prices, when they are not the file's `batch_discount` times the standard ones."""

    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)


class PriceEntry(_Rates):
    fine_tuned: _FineTunedRates | None = None
    batch: _BatchRates | None = None
    as_of: str | None = Field(default=None, pattern=_AS_OF)
    source: str | None = None
    # Dated snapshot ids the provider bills at this row's price (gpt-4o-2024-08-06 under gpt-4o). A dated id
    # listed nowhere is unpriced, never priced as its undated row: snapshots of one model can cost differently.
    snapshots: list[str] = Field(default_factory=list)
    # The shutdown day (from it on the model no longer answers) and where it was announced; a fine-tune of the
    # row's model retires with it (harness.models.lifecycle).
    retires: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    retires_source: str | None = None


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
    as_of: str | None = None  # when the table's price was read (table prices only)
    row: str | None = None  # the table row it came from
    training_per_hour: float | None = None
    batch: bool = False  # Batch API rates (run.mode: batch)
    per_call: float | None = None  # USD per call, whatever its tokens (`price_per_call`; basis "per call")

    @property
    def known(self) -> bool:
        """Whether the harness can cost a call from it (a "reported" price is the application's own report)."""
        return self.basis not in ("unknown", "reported")


UNKNOWN = Price(0.0, 0.0, 0.0, None, "unknown", "no price found")
# An application under test with no price in the config: each call costs what it reports, else unknown.
REPORTED = Price(0.0, 0.0, 0.0, None, "reported", "the cost each call reports; unknown where it reports none")
DEFAULT_BATCH_DISCOUNT = 0.5  # OpenAI Batch API: half the standard price (a table's batch_discount wins)

_DATE_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def _read(path: Path) -> PriceFile:
    if not path.is_file():
        raise ConfigError(f"{path}: price table not found (a YAML file like configs/pricing.example.yaml)")
    text = read_utf8(path, ConfigError)
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML in price table") from None
    try:
        return PriceFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc, yaml.compose(text))) from None


def price_date(as_of: str | None) -> dt.date | None:
    """`2026-11-24` -> that day; `2026-06` -> the 1st of the month (the oldest the price can be)."""
    if not as_of:
        return None
    try:
        return dt.date.fromisoformat(as_of if len(as_of) > 7 else f"{as_of}-01")
    except ValueError:
        return None


def stale_warning(price: Price, today: dt.date | None = None) -> str | None:
    """A warning naming the date when a table price is older than STALE_AFTER_DAYS on `today` (the day the
    caller passed down, e.g. `--today`; else the system's date: harness.clock)."""
    when = price_date(price.as_of)
    if when is None or price.basis not in ("table", "fine-tuned table"):
        return None
    age = (clock.today(today) - when).days
    if age <= STALE_AFTER_DAYS:
        return None
    what = f"{price.row} fine-tuned" if price.basis == "fine-tuned table" else price.row
    return (f"the price of {what} dates from {price.as_of} ({age} days ago, more than {STALE_AFTER_DAYS}); "
            f"check the provider's pricing page and put the current price in a pricing file (`pricing:`) "
            f"or on the model (`price:`)")


class PriceTable:
    def __init__(self, entries: dict[str, PriceEntry], sources: list[str], batch_discount: float | None = None):
        self.entries = entries
        self.sources = sources
        self.batch_discount = batch_discount
        # dated snapshot id -> the row that lists it (a row of that very name wins over a listing)
        self.snapshot_rows = {snap: name for name, e in entries.items() for snap in e.snapshots}

    @classmethod
    def load(cls, override: Path | None = None) -> PriceTable:
        builtin = resources.files("harness.models").joinpath("prices.yaml")
        with resources.as_file(builtin) as p:
            base = _read(Path(p))
        entries = dict(base.models)
        sources = ["built-in harness/models/prices.yaml"]
        discount = base.batch_discount
        if override is not None:
            user = _read(override)
            entries.update({name: _keep_dates(e, base.models.get(name)) for name, e in user.models.items()})
            sources.append(str(override))
            discount = user.batch_discount if user.batch_discount is not None else discount
        return cls(entries, sources, discount)

    def _entry(self, model_id: str) -> tuple[str, PriceEntry] | None:
        """The row of `model_id`: its own, else the row listing it under `snapshots:`. A dated id is never
        priced as its undated row by stripping the date (see unlisted_snapshot)."""
        name = model_id if model_id in self.entries else self.snapshot_rows.get(model_id)
        return (name, self.entries[name]) if name is not None else None

    def row(self, model_id: str) -> tuple[str, PriceEntry] | None:
        """(row name, entry) of `model_id` (its own row or the row listing it under `snapshots:`), or None."""
        return self._entry(model_id)

    def unlisted_snapshot(self, model_id: str) -> str | None:
        """The undated row of a dated snapshot id (or of a fine-tuned id's dated base) that no row lists."""
        base = fine_tuned_base(model_id) or model_id
        family = _DATE_SUFFIX.sub("", base)
        if family != base and self._entry(base) is None and family in self.entries:
            return family
        return None

    def unpriced_reason(self, model_id: str) -> str:
        """Why `model_id` has no price, for the one-line error that stops a run."""
        family = self.unlisted_snapshot(model_id)
        if family is None:
            return f"no price for model {model_id!r}"
        base = fine_tuned_base(model_id) or model_id
        return (f"{model_id!r} is a dated snapshot that no price-table row lists, and it is not priced as "
                f"{family!r} (snapshots can cost differently): list it under `snapshots:` of {family} or give it "
                f"its own row in a pricing file if {base} bills at that price")

    def lookup(self, model_id: str) -> Price:
        base = fine_tuned_base(model_id)
        if base is not None:
            found = self._entry(base)
            if found is None or found[1].fine_tuned is None:
                return UNKNOWN
            name, entry = found
            ft = entry.fine_tuned
            as_of, source = ft.as_of or entry.as_of, ft.source or entry.source
            return Price(
                ft.input, ft.output, ft.cached_input if ft.cached_input is not None else ft.input,
                ft.training, "fine-tuned table", f"{_row_label(name, base)} fine-tuned, {source or ''} {as_of or ''}"
                .strip(), as_of=as_of, row=name, training_per_hour=ft.training_per_hour,
            )
        found = self._entry(model_id)
        if found is None:
            return UNKNOWN
        name, e = found
        return Price(
            e.input, e.output, e.cached_input if e.cached_input is not None else e.input,
            e.training, "table", f"{_row_label(name, model_id)}, {e.source or ''} {e.as_of or ''}".strip(),
            as_of=e.as_of, row=name,
        )

    def for_model(self, cfg: ModelConfig, model_id: str, *, batch: bool = False) -> Price:
        """The price of one call; with `batch`, the Batch API price (see batch_price)."""
        price = self._sync_price(cfg, model_id)
        return self.batch_price(price) if batch else price

    def batch_price(self, price: Price) -> Price:
        """The Batch API price: the table row's `batch` rates when it lists them, else the synchronous rates
        times `batch_discount` (0.5 at OpenAI, and when no table says). Self-hosted and unknown prices stay."""
        if not price.known or price.basis == "self-hosted":
            return price
        entry = self.entries.get(price.row) if price.basis == "table" and price.row else None
        if entry is not None and entry.batch is not None:
            b = entry.batch
            return replace(price, input=b.input, output=b.output,
                           cached_input=b.cached_input if b.cached_input is not None else b.input,
                           source=f"{price.source}; Batch API price from the table", batch=True)
        share = self.batch_discount if self.batch_discount is not None else DEFAULT_BATCH_DISCOUNT
        return replace(price, input=price.input * share, output=price.output * share,
                       cached_input=price.cached_input * share,
                       source=f"{price.source}; Batch API: {share:g} x the standard price", batch=True)

    def _sync_price(self, cfg: ModelConfig, model_id: str) -> Price:
        if cfg.price_per_call is not None:
            return Price(0.0, 0.0, 0.0, None, "per call", f"${cfg.price_per_call:g} per call set in the run config",
                         per_call=cfg.price_per_call)
        if cfg.price is not None:
            p = cfg.price
            return Price(p.input, p.output, p.cached_input if p.cached_input is not None else p.input,
                         None, "config", "price set in the run config")
        provider = provider_for(cfg)
        found = self.lookup(provider.price_id(model_id))
        # An Azure deployment or a gateway alias is priced as the row price_as names, never guessed past it.
        if found.known or cfg.price_as:
            return found
        if provider.self_hosted or cfg.price_per_hour is not None:
            why = (f"self-hosted at ${cfg.price_per_hour}/hour, costed from measured throughput"
                   if cfg.price_per_hour is not None else
                   "self-hosted, no per-token price (set price_per_hour in the model config to cost it)")
            return Price(0.0, 0.0, 0.0, None, "self-hosted", why)
        return REPORTED if provider.reports_cost else UNKNOWN


def _keep_dates(user: PriceEntry, builtin: PriceEntry | None) -> PriceEntry:
    """A pricing file's row replaces the built-in row's prices, not the shutdown and fine-tuning dates it does not
    state itself: a new price does not bring a retired model back."""
    if builtin is None:
        return user
    update: dict[str, Any] = {}
    if user.retires is None and builtin.retires is not None:
        update.update(retires=builtin.retires, retires_source=builtin.retires_source)
    ft, old_ft = user.fine_tuned, builtin.fine_tuned
    if ft is not None and ft.new_jobs is None and old_ft is not None and old_ft.new_jobs is not None:
        update["fine_tuned"] = ft.model_copy(update={"new_jobs": old_ft.new_jobs})
    return user.model_copy(update=update) if update else user


def _row_label(row: str, model_id: str) -> str:
    """`gpt-4o` for the row itself; `gpt-4o (snapshot gpt-4o-2024-08-06)` for a snapshot it lists."""
    return row if model_id == row else f"{row} (snapshot {model_id})"


def cost_usd(usage: Usage | None, price: Price) -> float | None:
    """Cost of one call. Cached prompt tokens are billed at the cached rate; a per-call price is the cost of
    every call, whatever its usage."""
    if price.per_call is not None:
        return price.per_call
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
        "training_per_hour": price.training_per_hour,
        "basis": price.basis,
        "source": price.source,
        "as_of": price.as_of,
        "batch": price.batch,
        **({"per_call_usd": price.per_call} if price.per_call is not None else {}),
    }


def table_rows(table: PriceTable, today: dt.date | None = None) -> list[dict[str, Any]]:
    """One row per model of the table, for `harness prices`: USD per 1M tokens (training also per hour)."""
    rows = []
    for name in sorted(table.entries):
        e = table.entries[name]
        discount = table.batch_discount
        if e.batch is not None:
            batch_in, batch_out = e.batch.input, e.batch.output
        elif discount is not None:
            batch_in, batch_out = e.input * discount, e.output * discount
        else:
            batch_in = batch_out = None
        ft = e.fine_tuned
        price = table.lookup(name)
        life = lifecycle_of(table, name)
        rows.append({
            "model": name, "input": e.input, "cached_input": e.cached_input, "output": e.output,
            "batch_input": batch_in, "batch_output": batch_out,
            "ft_input": ft.input if ft else None, "ft_cached_input": ft.cached_input if ft else None,
            "ft_output": ft.output if ft else None,
            "training_per_1m": ft.training if ft else None, "training_per_hour": ft.training_per_hour if ft else None,
            "as_of": e.as_of, "source": e.source, "snapshots": list(e.snapshots),
            "ft_as_of": ft.as_of if ft else None, "ft_source": ft.source if ft else None,
            "stale": stale_warning(price, today) is not None,
            "ft_stale": ft is not None and stale_warning(table.lookup(f"ft:{name}:org::id"), today) is not None,
            "retires": e.retires, "retires_source": e.retires_source,
            "new_fine_tunes_until": life.new_jobs_close.isoformat() if life.new_jobs_close else None,
            "new_fine_tunes_open": life.can_retrain(today),
            "new_fine_tunes_stages": [s.model_dump() for s in life.stages],
            "new_fine_tunes_source": life.new_jobs.source if life.new_jobs else None,
        })
    return rows
