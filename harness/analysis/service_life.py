"""How long each fine-tuned variant can still answer, whether it can be retrained, and the break-even counted
only over the months it can serve (harness.report.service_text says it in words).

An OpenAI fine-tune answers only until its base model retires, and new fine-tuning jobs close on a given day
(harness.models.lifecycle reads both from the price table). A fine-tune that needs more months to pay back
its training than it has left never pays back: harness.analysis.economics then calls the break-even case
RETIRES_FIRST.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import clock, variant_kinds
from harness.models.lifecycle import lifecycle_of
from harness.models.pricing import PriceTable
from harness.models.providers import find_provider
from harness.rundir.manifest import Manifest


@dataclass
class ServiceLife:
    """The dates of one fine-tuned variant's model, as of `today`."""

    variant: str
    model_id: str
    base: str | None
    today: dt.date
    retires: dt.date | None = None
    retires_source: str | None = None
    months_left: float | None = None  # 0 once retired; None: no date known
    new_jobs_close: dt.date | None = None
    can_retrain: bool | None = None  # None: the table does not say
    closed_for_some: list[tuple[str, str]] = field(default_factory=list)  # (day, who) of earlier stages in force


def _table(config: dict[str, Any]) -> PriceTable:
    pricing = config.get("pricing")
    return PriceTable.load(Path(pricing) if pricing and Path(pricing).exists() else None)


def service_lives(manifest: Manifest, config: dict[str, Any] | None,
                  today: dt.date | None = None) -> list[ServiceLife]:
    """One entry per fine-tuned variant (a training kind, or an `ft:` model id) whose model the price table
    knows; a self-hosted one (a local LoRA) has no provider's shutdown day and none."""
    day = clock.today(today)
    table = None
    out = []
    for name, info in manifest.variants.items():
        model_id = info.model_id or ""
        if info.skipped or not model_id or not (variant_kinds.trains(info.kind) or model_id.startswith("ft:")):
            continue
        provider = find_provider(info.provider) if info.provider else None
        if provider is not None and provider.self_hosted:
            continue
        table = table or _table(config or {})
        lc = lifecycle_of(table, model_id)
        if lc.row is None and not lc.fine_tuned:
            continue
        out.append(ServiceLife(name, model_id, lc.base, day, lc.retires, lc.retires_source, lc.months_left(day),
                               lc.new_jobs_close, lc.can_retrain(day),
                               [(s.closes, s.who) for s in lc.closed_for_some(day)]))
    return out


def months_to_serve(lives: list[ServiceLife], variant: str | None) -> float | None:
    """The months `variant` can still answer (0 once retired), None when no date is known."""
    life = next((s for s in lives if s.variant == variant), None)
    return None if life is None else life.months_left
