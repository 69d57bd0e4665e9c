"""When a priced model stops answering, and until when new fine-tuning jobs can be created on it: the dates
the price table gives per row (`retires:`, and `new_jobs:` under `fine_tuned:`), each with its source.

A fine-tuned id (`ft:BASE:org::id`) has no row of its own: it answers only while its base model does, so it
takes the base's retirement date, and it can be retrained only while the base row's fine-tuning is open. A
model with no date in the table has none announced that the table knows of: no date is ever guessed.

Dates compare against `today` from harness.clock (`--today` on the command line), never the calendar directly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from harness import clock
from harness.models.model_ids import fine_tuned_base

WARN_WITHIN_DAYS = 90  # validate and run warn when a variant's model retires within this many days
DAYS_PER_MONTH = 365.25 / 12
_DAY = r"^\d{4}-\d{2}-\d{2}$"


class FineTuningStage(BaseModel):
    """One step of a provider closing new fine-tuning jobs: from `closes` on, `who` can no longer create them."""

    model_config = ConfigDict(extra="forbid")
    closes: str = Field(pattern=_DAY)
    who: str = "everyone"


class NewJobs(BaseModel):
    """Until when new fine-tuning jobs can be created on a base model (the `fine_tuned:` entry's `new_jobs:`).
    The last stage closes them for everyone; earlier ones close them for some organisations only."""

    model_config = ConfigDict(extra="forbid")
    stages: list[FineTuningStage] = Field(min_length=1)
    source: str

    @property
    def closes(self) -> dt.date:
        """The day no one can create a new fine-tuning job any more."""
        return max(dt.date.fromisoformat(s.closes) for s in self.stages)


class _Rows(Protocol):
    def row(self, model_id: str) -> tuple[str, Any] | None: ...


@dataclass(frozen=True)
class Lifecycle:
    """The table's dates for one model id (a fine-tune's are its base's)."""

    model_id: str
    row: str | None = None  # the price-table row the dates come from
    base: str | None = None  # the base model of a fine-tuned id
    retires: dt.date | None = None  # the shutdown day: from this day on the model no longer answers
    retires_source: str | None = None
    new_jobs: NewJobs | None = None  # fine-tuning of the row's model (None: not fine-tunable per the table)
    stages: tuple[FineTuningStage, ...] = field(default_factory=tuple)

    @property
    def fine_tuned(self) -> bool:
        return self.base is not None

    @property
    def new_jobs_close(self) -> dt.date | None:
        """The day new fine-tuning jobs close for everyone: the earlier of the stated close and retirement."""
        if self.new_jobs is None:
            return None
        close = self.new_jobs.closes
        return min(close, self.retires) if self.retires is not None else close

    def days_left(self, today: dt.date | None = None) -> int | None:
        """Days from `today` until the shutdown day (0 or less: retired)."""
        return None if self.retires is None else (self.retires - clock.today(today)).days

    def months_left(self, today: dt.date | None = None) -> float | None:
        days = self.days_left(today)
        return None if days is None else max(days, 0) / DAYS_PER_MONTH

    def can_retrain(self, today: dt.date | None = None) -> bool | None:
        """Whether anyone can still create a new fine-tuning job on the base (None: the table does not say)."""
        close = self.new_jobs_close
        return None if close is None else clock.today(today) < close

    def closed_for_some(self, today: dt.date | None = None) -> list[FineTuningStage]:
        """Earlier stages already in force on `today` (new jobs closed for some organisations only)."""
        day = clock.today(today)
        final = self.new_jobs_close
        return [s for s in self.stages
                if dt.date.fromisoformat(s.closes) <= day and (final is None or dt.date.fromisoformat(s.closes) < final)]


def parse_day(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def lifecycle_of(table: _Rows, model_id: str) -> Lifecycle:
    """The dates of `model_id` from the table; a fine-tuned id inherits its base's retirement."""
    base = fine_tuned_base(model_id)
    found = table.row(base or model_id)
    if found is None:
        return Lifecycle(model_id, base=base)
    name, entry = found
    ft = entry.fine_tuned
    new_jobs = ft.new_jobs if ft is not None else None
    return Lifecycle(model_id, row=name, base=base, retires=parse_day(entry.retires),
                     retires_source=entry.retires_source, new_jobs=new_jobs,
                     stages=tuple(new_jobs.stages) if new_jobs is not None else ())


def retirement_warning(lc: Lifecycle, today: dt.date | None = None,
                       within_days: int = WARN_WITHIN_DAYS) -> str | None:
    """One line when the model (or a fine-tune's base) has retired or retires within `within_days` of `today`;
    None otherwise, and when the table has no date for it."""
    days = lc.days_left(today)
    if days is None or days > within_days:
        return None
    day = clock.today(today)
    source = " ".join((lc.retires_source or "price table").split())
    what = f"{lc.model_id} is a fine-tune of {lc.base}, which" if lc.fine_tuned else lc.model_id
    if days <= 0:
        effect = "the fine-tune no longer answers" if lc.fine_tuned else "calls to it fail"
        return (f"{what} retired on {lc.retires} ({-days} days before {day}; {source}): {effect}; evaluate a "
                f"replacement")
    effect = "the fine-tune stops answering with it" if lc.fine_tuned else "calls to it fail from that day"
    return f"{what} retires on {lc.retires}, in {days} days ({source}): {effect}; evaluate a replacement before then"
