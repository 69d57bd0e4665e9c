"""The decision summary's sentences on a fine-tune's remaining life and on a break-even it cannot reach."""

from __future__ import annotations

import datetime as dt

from harness.analysis.economics import BreakEven, Payback, TrainingEstimate
from harness.analysis.service_life import ServiceLife
from harness.report.decision import break_even_text
from harness.report.service_text import months_text, service_line

FT = "ft:gpt-4.1-nano-2025-04-14:acme::x"


def _life(today, months, can_retrain, closed=()):
    return ServiceLife("ft", FT, "gpt-4.1-nano-2025-04-14", today, dt.date(2027, 3, 1), "notice", months,
                       dt.date(2027, 1, 6), can_retrain, list(closed))


def test_service_sentences():
    assert service_line(_life(dt.date(2026, 12, 1), 2.96, True)) == (
        f"ft ({FT}) serves until 2027-03-01: 3 months left as of 2026-12-01 (its base model retires then; "
        "`harness prices` names the source); new fine-tuning jobs can be created until 2027-01-06.")
    assert service_line(_life(dt.date(2027, 1, 20), 1.3, False)).endswith(
        "serves until 2027-03-01: 1 month left as of 2027-01-20 (its base model retires then; `harness prices` names "
        "the source); new fine-tuning jobs closed since 2027-01-06, so it cannot be retrained.")
    assert service_line(_life(dt.date(2027, 3, 2), 0.0, False)).startswith(
        f"ft ({FT}) stopped serving on 2027-03-01, when its base model gpt-4.1-nano-2025-04-14 retired")
    unknown = ServiceLife("ft", "ft:x:org::1", "x", dt.date(2026, 1, 1))
    assert service_line(unknown) == ("ft (ft:x:org::1): no retirement date of its base model x is in the price table "
                                     "(check the provider's deprecations page); the price table does not say whether "
                                     "its base model can still be fine-tuned.")
    assert (months_text(0.3), months_text(1.0), months_text(14.2)) == ("9 days", "1 month", "14 months")


def test_a_fine_tune_that_retires_before_it_pays_back_is_said_to():
    training = TrainingEstimate(cost_usd=42.0)
    be = BreakEven("ft", "fs", 0.003, 14_000, 14.0, Payback.RETIRES_FIRST, 0.001, 0.004, serves_months=3.0)
    assert break_even_text(be, training, 1000) == (
        "ft saves $0.003000 per request against fs (the cheapest variant at least as accurate); training ($42.00) "
        "would pay back after 14,000 requests, about 14.0 months at 1,000 requests a month, but ft retires before it "
        "pays back: needs 14 months, has 3 months.")
