"""In words: how long each fine-tuned variant can still serve and whether it can be retrained
(harness.analysis.service_life), and how sure the break-even and the monthly projection are
(harness.analysis.break_even_interval)."""

from __future__ import annotations

import math

from harness.analysis.break_even_interval import BreakEvenInterval
from harness.analysis.economics import Economics
from harness.analysis.service_life import ServiceLife
from harness.analysis.stats import DEFAULT_SEED
from harness.report.format import usd


def months_text(months: float) -> str:
    """`3 months`, `1 month`, `12 days` (under a month)."""
    if months < 1:
        days = round(months * 365.25 / 12)
        return f"{days} day{'s' if days != 1 else ''}"
    n = round(months)
    return f"{n} month{'s' if n != 1 else ''}"


def _retrain(s: ServiceLife) -> str:
    if s.can_retrain is None:
        return "the price table does not say whether its base model can still be fine-tuned"
    if not s.can_retrain:
        return f"new fine-tuning jobs closed since {s.new_jobs_close}, so it cannot be retrained"
    text = f"new fine-tuning jobs can be created until {s.new_jobs_close}"
    if s.closed_for_some:
        text += " (already closed " + "; ".join(f"since {day} for {who}" for day, who in s.closed_for_some) + ")"
    return text


def service_line(s: ServiceLife) -> str:
    """One sentence per fine-tuned variant: until when it serves, as of which day, and whether it can be
    retrained; the source of each date is in `harness prices`."""
    who = f"{s.variant} ({s.model_id})"
    if s.retires is None:
        return (f"{who}: no retirement date of its base model {s.base or s.model_id} is in the price table (check "
                f"the provider's deprecations page); {_retrain(s)}.")
    if s.months_left is not None and s.months_left <= 0:
        return (f"{who} stopped serving on {s.retires}, when its base model {s.base or s.model_id} retired (as of "
                f"{s.today}); {_retrain(s)}.")
    return (f"{who} serves until {s.retires}: {months_text(s.months_left or 0.0)} left as of {s.today} (its base "
            f"model retires then; `harness prices` names the source); {_retrain(s)}.")


def _requests(x: float) -> str:
    return "never" if math.isinf(x) else f"{x:,.0f}"


def interval_range(iv: BreakEvenInterval) -> str:
    """`6,667 to 20,000 requests (1.3 to 4.0 months)`, `10,000 requests to never`, or `1,469 requests (1 day)`
    when every resample gives the same volume."""
    if iv.includes_never:
        text = ("never" if math.isinf(iv.requests_lo) else f"{_requests(iv.requests_lo)} requests to never")
    elif math.isclose(iv.requests_lo, iv.requests_hi, rel_tol=1e-9):
        text = f"{_requests(iv.requests_lo)} requests in every resample"
    else:
        text = f"{_requests(iv.requests_lo)} to {_requests(iv.requests_hi)} requests"
    if iv.months_lo is not None and iv.months_hi is not None and not math.isinf(iv.months_lo):
        if iv.months_lo >= 1 and not math.isinf(iv.months_hi):
            text += (f" ({iv.months_lo:.1f} months)" if math.isclose(iv.months_lo, iv.months_hi, rel_tol=1e-9)
                     else f" ({iv.months_lo:.1f} to {iv.months_hi:.1f} months)")
        else:
            lo, hi = _months(iv.months_lo), "never" if math.isinf(iv.months_hi) else _months(iv.months_hi)
            text += f" ({lo})" if lo == hi else f" ({lo} to {hi})"
    return text


def _months(m: float) -> str:
    return months_text(m) if m < 1 else f"{m:.1f} months"


def interval_sentence(iv: BreakEvenInterval | None) -> str | None:
    """The break-even's 95% interval, and whether it includes never paying back."""
    if iv is None:
        return None
    text = (f"The break-even's 95% interval (from {iv.resamples:,} resamples of the test items, seed {DEFAULT_SEED}) "
            f"is {interval_range(iv)}")
    if iv.includes_never:
        text += (f": it includes \"never pays back\" — in {iv.never_share:.0%} of resamples the fine-tune was not "
                 "cheaper per request than the reference")
    text += "."
    if iv.no_reference_share > 0:
        text += (f" In {iv.no_reference_share:.0%} of the resamples no prompt-only variant was as accurate as the "
                 "fine-tune; they are left out.")
    if iv.fixed_cost:
        one = len(iv.fixed_cost) == 1
        text += (f" {', '.join(iv.fixed_cost)} {'has' if one else 'have'} no per-call cost (self-hosted, costed from "
                 f"busy time), so {'its cost' if one else 'their costs'} per request {'is' if one else 'are'} held "
                 "at the measured value.")
    return text


def projection_intervals(eco: Economics, monthly: int | None) -> str | None:
    """The monthly projection's 95% intervals, one per variant with per-call costs."""
    if not monthly or not eco.cost_intervals:
        return None
    parts = [f"{v} {usd(lo * monthly, trim=True)}–{usd(hi * monthly, trim=True)}"
             for v, (lo, hi) in eco.cost_intervals.items()]
    return (f"95% intervals of the monthly cost at {monthly:,} requests (resampling the test items): "
            + ", ".join(parts) + ".")
