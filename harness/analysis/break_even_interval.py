"""How sure the break-even volume and the monthly projection are: 95% intervals by resampling items.

Method: a paired bootstrap over the test items. Each resample draws the items with replacement, the same
draw for every variant (they answered the same items), and recomputes from it each variant's accuracy (mean
of its per-item primary score over its repeats) and cost per request (mean per-item cost of its answered
calls); then it applies the point estimate's own rule: the reference is the cheapest prompt-only variant at
least as accurate as the fine-tune *in that resample*, and the break-even is training cost / (reference cost
- fine-tune cost), or "never" when the fine-tune is not cheaper. The interval is the 2.5th and 97.5th
percentile of those break-evens, taken as order statistics so that "never" (infinity) can be an end.

Why this and not the ends of the accuracy and cost intervals: the break-even is a ratio whose denominator
(the saving per request) can be near or below zero, where a delta-method or interval-end calculation breaks
down; which variant is the reference depends on an accuracy comparison, a step no interval arithmetic
follows; and the variants' accuracies and costs are measured on the same items, so they are correlated
(long items cost more for every variant), which resampling items keeps and combining separate intervals
loses. Resampling items is the unit the rest of the report's intervals use (harness.analysis.stats).

What is held fixed: the training cost (an estimate from token counts, with no sampling error of its own) and
a self-hosted variant's cost per request (costed from busy time, not per call). A resample in which no
prompt-only variant is as accurate as the fine-tune has no reference: it is left out of the interval and
counted (`no_reference_share`), since the point estimate would then call the fine-tune the most accurate
option rather than compute a break-even.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.analysis.stats import BOOTSTRAP_SAMPLES, DEFAULT_SEED, outcomes_frame
from harness.numbers import as_float
from harness.records import Record

LOW, HIGH = 0.025, 0.975


@dataclass(frozen=True)
class BreakEvenInterval:
    """95% interval of the break-even volume (requests; infinity: never pays back) and in months."""

    requests_lo: float
    requests_hi: float
    months_lo: float | None
    months_hi: float | None
    never_share: float  # share of resamples (with a reference) in which the fine-tune is not cheaper
    no_reference_share: float  # share of resamples in which no prompt-only variant was as accurate
    resamples: int
    fixed_cost: tuple[str, ...] = ()  # variants without per-call costs (self-hosted): their cost is held fixed

    @property
    def includes_never(self) -> bool:
        return bool(np.isinf(self.requests_hi))


def _per_item(records: list[Record], variants: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(items x variants) per-item mean primary score and mean cost of answered calls; NaN where unknown."""
    frame = outcomes_frame(records)
    frame = frame[frame["variant"].isin(variants)]
    score = frame.assign(correct=pd.to_numeric(frame["correct"], errors="coerce"))
    acc = score.groupby(["item_id", "variant"])["correct"].mean().unstack("variant")
    answered = frame[frame["answered"].astype(bool)].assign(cost_usd=lambda f: pd.to_numeric(f["cost_usd"],
                                                                                            errors="coerce"))
    cost = answered.groupby(["item_id", "variant"])["cost_usd"].mean().unstack("variant")
    acc = acc.reindex(columns=variants)
    cost = cost.reindex(index=acc.index, columns=variants)
    return acc.to_numpy(dtype=float, copy=True), cost.to_numpy(dtype=float, copy=True)  # filled in below


def _resampled_means(m: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(resamples x columns) means of each column of the (items x columns) `m` over item resamples drawn with
    replacement, NaN entries left out. Each resample is a row of draw counts, so a resample's mean is one
    matrix product; the resamples go in chunks of about 2 million counts to keep memory flat on large runs."""
    n = m.shape[0]
    known = ~np.isnan(m)
    values = np.where(known, m, 0.0)
    rng = np.random.default_rng(seed)
    step = max(1, 2_000_000 // n)
    out = []
    for start in range(0, n_boot, step):
        k = min(step, n_boot - start)
        idx = rng.integers(0, n, size=(k, n))
        w = np.bincount((idx + n * np.arange(k)[:, None]).ravel(), minlength=k * n).reshape(k, n).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append((w @ values) / (w @ known))
    return np.vstack(out)


def _quantiles(x: np.ndarray) -> tuple[float, float]:
    lo, hi = np.quantile(x, [LOW, HIGH], method="inverted_cdf")  # order statistics: infinity can be an end
    return float(lo), float(hi)


def _fixed_costs(cost: np.ndarray, df: pd.DataFrame, variants: list[str]) -> np.ndarray:
    """A variant with no per-call cost (self-hosted, costed from busy time) keeps its cost per request."""
    cpr = df.set_index("variant")["cost_per_request_usd"]
    for j, v in enumerate(variants):
        if np.isnan(cost[:, j]).all():
            cost[:, j] = as_float(cpr.get(v)) if as_float(cpr.get(v)) is not None else np.nan
    return cost


def break_even_interval(records: list[Record], df: pd.DataFrame, fine_tuned: str, prompt_only: list[str],
                        training_cost: float | None, monthly: int | None, *, n_boot: int = BOOTSTRAP_SAMPLES,
                        seed: int = DEFAULT_SEED) -> BreakEvenInterval | None:
    """The break-even's 95% interval (see the module docstring); None without a training cost or items."""
    if not training_cost or training_cost <= 0 or not prompt_only:
        return None
    variants = [fine_tuned, *prompt_only]
    acc, cost = _per_item(records, variants)
    if acc.shape[0] == 0:
        return None
    fixed = tuple(v for j, v in enumerate(variants) if np.isnan(cost[:, j]).all())
    cost = _fixed_costs(cost, df, variants)
    both = _resampled_means(np.hstack([acc, cost]), n_boot, seed)  # one draw for accuracy and cost: paired
    a, c = both[:, :len(variants)], both[:, len(variants):]
    ft_acc, ft_cost = a[:, :1], c[:, 0]
    qualifies = (a[:, 1:] >= ft_acc - 1e-12) & ~np.isnan(c[:, 1:])
    ref_cost = np.where(qualifies, c[:, 1:], np.inf).min(axis=1)
    has_ref = np.isfinite(ref_cost) & ~np.isnan(ft_cost)
    if not has_ref.any():
        return None
    saving = ref_cost[has_ref] - ft_cost[has_ref]
    with np.errstate(divide="ignore"):
        requests = np.where(saving > 0, training_cost / np.where(saving > 0, saving, 1.0), np.inf)
    lo, hi = _quantiles(requests)
    months = (lo / monthly, hi / monthly) if monthly else (None, None)
    return BreakEvenInterval(lo, hi, months[0], months[1], float(np.mean(np.isinf(requests))),
                             float(1 - has_ref.mean()), n_boot, fixed)


def cost_intervals(records: list[Record], df: pd.DataFrame, *, n_boot: int = BOOTSTRAP_SAMPLES,
                   seed: int = DEFAULT_SEED) -> dict[str, tuple[float, float]]:
    """Per variant with per-call costs, the 95% interval of its cost per request (resampling its items); the
    monthly projection's interval is this times `monthly_requests`."""
    priced = [str(v) for v, c in zip(df["variant"], df["cost_per_request_usd"], strict=False)
              if as_float(c) is not None]
    out: dict[str, tuple[float, float]] = {}
    if not priced:
        return out
    _, cost = _per_item(records, priced)
    for j, v in enumerate(priced):
        col = cost[~np.isnan(cost[:, j]), j]
        if col.size == 0:
            continue
        out[v] = _quantiles(_resampled_means(col[:, None], n_boot, seed)[:, 0])
    return out
