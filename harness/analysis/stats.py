"""Confidence intervals and paired tests, so a difference between variants is shown with how sure it is.

Variants answer the *same* held-out items, so comparisons are paired: an item one variant gets right and
another gets wrong is the evidence, not two independent accuracies. Hence a paired bootstrap for the
interval of the difference and an exact McNemar test (a binomial test on the discordant items) for its
p-value. Everything here is deterministic for a given seed, so a re-built report is byte-identical.

scipy is not a core dependency; the exact binomial tail is computed with integer arithmetic (or in log
space for very large samples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.records import Record

Z95 = 1.959963984540054  # two-sided 95% normal quantile
BOOTSTRAP_SAMPLES = 2000
DEFAULT_SEED = 0


def wilson(k: float, n: float, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for k successes in n trials. Unlike the normal approximation it stays inside
    0..1 and behaves at 0% and 100%, which small eval sets hit often. k may be fractional (per-item means
    over repeats)."""
    if n <= 0:
        return None
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(max(p * (1 - p) / n + z2 / (4 * n * n), 0.0)) / denom
    lo = 0.0 if k <= 0 else max(0.0, centre - half)
    hi = 1.0 if k >= n else min(1.0, centre + half)  # exact at the ends, not 0.9999999999999999
    return lo, hi


def _log_binom_tail(n: int, k: int) -> float:
    """log(sum_{i=0..k} C(n, i)) via log-sum-exp of lgamma terms."""
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(k + 1)]
    top = max(logs)
    return top + math.log(sum(math.exp(x - top) for x in logs))


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value: b and c are the discordant counts (right->wrong, wrong->right).
    Under no difference each discordant item is a fair coin, so p = 2 * P(Binomial(b+c, 1/2) <= min(b, c)),
    capped at 1."""
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be >= 0")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    if n <= 5000:
        # Exact integers: C(n, i+1) = C(n, i) * (n - i) / (i + 1); int / int division rounds correctly.
        term, total = 1, 1
        for i in range(k):
            term = term * (n - i) // (i + 1)
            total += term
        return min(1.0, 2 * total / (1 << n))
    return min(1.0, 2 * math.exp(_log_binom_tail(n, k) - n * math.log(2)))


def paired_bootstrap(baseline: np.ndarray | list[float], candidate: np.ndarray | list[float], *,
                     n_boot: int = BOOTSTRAP_SAMPLES, seed: int = DEFAULT_SEED,
                     level: float = 0.95) -> tuple[float, float, float] | None:
    """(candidate - baseline mean difference, low, high): a percentile interval from resampling *items*
    (both variants' values of an item stay together).

    Resampling n items with replacement and averaging their per-item differences is the same as drawing
    multinomial counts over the distinct difference values; per-item differences take few distinct
    values (-1/0/+1, or multiples of 1/repeats), so this is exact in distribution and needs no n_boot x n
    index matrix — a 10,000-item run bootstraps in milliseconds."""
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(candidate, dtype=float)
    if a.shape != b.shape:
        raise ValueError("paired samples must have the same length")
    n = a.size
    if n == 0:
        return None
    d = b - a
    diff = float(d.mean())
    means = _bootstrap_means(d, n_boot, seed)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return diff, float(lo), float(hi)


def _bootstrap_means(d: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    n = d.size
    values, counts = np.unique(d, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts / n, size=n_boot)
    return draws @ values / n


def bootstrap_p_value(baseline: np.ndarray | list[float], candidate: np.ndarray | list[float], *,
                      n_boot: int = BOOTSTRAP_SAMPLES, seed: int = DEFAULT_SEED) -> float | None:
    """Two-sided p-value of the paired mean difference for scores that are not pass/fail (a 0..1 mean such as
    partial credit or a judge's 1-5): twice the smaller share of bootstrap means on either side of zero, from
    the same resamples as `paired_bootstrap` (same seed), so p < 0.05 exactly when its 95% interval excludes 0.
    Its resolution is 1/n_boot. No difference at all gives 1."""
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(candidate, dtype=float)
    if a.size == 0:
        return None
    d = b - a
    if not d.any():
        return 1.0
    means = _bootstrap_means(d, n_boot, seed)
    return float(min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean())))


# -- per-item outcomes ---------------------------------------------------------------------------------

def outcomes_frame(records: list[Record]) -> pd.DataFrame:
    """One row per record with the numbers the statistics need; built once per report.

    `correct` is the record's *primary* score (harness.scoring.suite): 1/0 for exact match or any pass/fail
    scorer, a value in 0..1 for a graded one, NaN where it is unknown (a judge that failed). Every statistic
    below reads it, so they all work on whichever score the task made primary."""
    rows = [
        (r.variant, r.item_id, r.repeat, r.error is None, _primary(r),
         bool(r.scores.get("format_valid")), r.latency_s, r.cache_hit, r.started_at,
         r.usage.prompt_tokens if r.usage is not None else None, r.cost_usd)
        for r in records
    ]
    return pd.DataFrame(rows, columns=["variant", "item_id", "repeat", "answered", "correct", "format_valid",
                                       "latency_s", "cache_hit", "started_at", "prompt_tokens", "cost_usd"])


def _primary(r: Record) -> float:
    if "primary" in r.scores:  # written by harness.scoring.suite; None = unknown
        v = r.scores["primary"]
        return float("nan") if v is None else float(v)
    return 1.0 if r.scores.get("correct") else 0.0  # a run from before primary scores existed


def item_outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (variant, item): its repeats, the mean of correct / format_valid over them, and the majority vote
    (strictly more than half of the repeats; a tie counts as not correct, so a coin-flip item never counts
    as a success). An unanswered repeat (error) counts as not correct and not valid: every item is in the
    comparison, so a variant cannot gain from failing.

    `correct_rate` is the mean of the known primary scores of the item's repeats (NaN when none is known);
    `graded` counts repeats whose primary score is neither 0 nor 1 (then the score is not pass/fail and the
    majority vote and McNemar do not apply)."""
    if frame.empty:
        return pd.DataFrame(columns=["variant", "item_id", "repeats", "correct_rate", "format_valid_rate",
                                     "correct", "format_valid", "disagree", "graded"]
                            ).set_index(["variant", "item_id"])
    work = frame.assign(graded=frame["correct"].notna() & ~frame["correct"].isin([0.0, 1.0]))
    g = work.groupby(["variant", "item_id"], sort=False)
    out = g.agg(repeats=("correct", "size"), correct_rate=("correct", "mean"),
                format_valid_rate=("format_valid", "mean"), cmin=("correct", "min"), cmax=("correct", "max"),
                graded=("graded", "sum"))
    out["correct"] = out["correct_rate"] > 0.5
    out["format_valid"] = out["format_valid_rate"] > 0.5
    out["disagree"] = out["cmin"] < out["cmax"]  # repeats that scored differently (pass/fail or graded)
    return out.drop(columns=["cmin", "cmax"])


def first_records(records: list[Record]) -> dict[tuple[str, str], Record]:
    """(variant, item_id) -> the record that stands for that item when one output is shown: its answered
    record of the lowest repeat, else (every repeat errored) its errored record of the lowest repeat.
    Among equal candidates the earliest in `records` wins."""
    first: dict[tuple[str, str], Record] = {}
    for r in records:
        key = (r.variant, r.item_id)
        prev = first.get(key)
        if prev is None or (prev.error is not None and r.error is None) or (
                (prev.error is None) == (r.error is None) and r.repeat < prev.repeat):
            first[key] = r
    return first


@dataclass
class RepeatSpread:
    """How much repeated calls disagree: the share of items whose repeats differ in correctness, and the
    standard deviation of accuracy across repeat rounds."""

    repeats: int
    items: int
    disagreement: float | None
    accuracy_std: float | None
    accuracy_majority: float | None


def repeat_spread(frame: pd.DataFrame, items: pd.DataFrame, variant: str) -> RepeatSpread:
    sub = frame[frame["variant"] == variant]
    repeats = int(sub["repeat"].nunique()) if not sub.empty else 0
    its = items.loc[variant] if variant in items.index.get_level_values(0) else items.iloc[0:0]
    n_items = len(its)
    if repeats < 2 or n_items == 0:
        return RepeatSpread(max(repeats, 1 if n_items else 0), n_items, None, None, None)
    multi = its[its["repeats"] >= 2]
    disagreement = float(multi["disagree"].mean()) if len(multi) else None
    per_round = sub.groupby("repeat")["correct"].mean()
    std = float(per_round.std(ddof=1)) if len(per_round) >= 2 else None
    return RepeatSpread(repeats, n_items, disagreement, std, float(its["correct"].mean()))


@dataclass
class PairedResult:
    """One metric, candidate vs baseline variant, on the items both were asked (unanswered = not correct)."""

    metric: str
    n: int
    baseline: float | None
    candidate: float | None
    diff: float | None
    lo: float | None
    hi: float | None
    right_to_wrong: int  # baseline right, candidate wrong (majority vote per item); graded: items that got worse
    wrong_to_right: int  # ... and the reverse (graded: items that got better)
    p_value: float | None
    test: str = "mcnemar"  # "mcnemar" (pass/fail scores) or "bootstrap" (0..1 means: bootstrap_p_value)
    unknown: int = 0  # paired items left out because a side's score is unknown (a judge that failed)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def paired_compare(base_items: pd.DataFrame, cand_items: pd.DataFrame, metric: str = "correct", *,
                   seed: int = DEFAULT_SEED, n_boot: int = BOOTSTRAP_SAMPLES) -> PairedResult:
    """Pair two per-item tables (indexed by item_id, from item_outcomes) on the items both were asked.
    The interval uses per-item means (all the information repeats give). The p-value: for a pass/fail score an
    exact McNemar test on the per-item majority; for a graded 0..1 score (any value strictly between 0 and 1 on
    either side) the paired bootstrap's (`bootstrap_p_value`). Items whose score is unknown on either side are
    left out (counted in `unknown`)."""
    rate = f"{metric}_rate"
    cols = [rate, metric] + (["graded"] if metric == "correct" and "graded" in base_items.columns
                             and "graded" in cand_items.columns else [])
    joined = base_items[cols].add_suffix("_b").join(cand_items[cols].add_suffix("_c"), how="inner")
    known = joined[f"{rate}_b"].notna() & joined[f"{rate}_c"].notna()
    unknown = int((~known).sum())
    joined = joined[known]
    n = len(joined)
    if n == 0:
        return PairedResult(metric, 0, None, None, None, None, None, 0, 0, None, unknown=unknown)
    a = joined[f"{rate}_b"].to_numpy(dtype=float)
    c = joined[f"{rate}_c"].to_numpy(dtype=float)
    diff, lo, hi = paired_bootstrap(a, c, seed=seed, n_boot=n_boot)  # type: ignore[misc]
    graded = "graded_b" in joined.columns and bool((joined["graded_b"] > 0).any() or (joined["graded_c"] > 0).any())
    if graded:
        r2w, w2r = int((c < a).sum()), int((c > a).sum())
        return PairedResult(metric, n, float(a.mean()), float(c.mean()), diff, lo, hi, r2w, w2r,
                            bootstrap_p_value(a, c, seed=seed, n_boot=n_boot), "bootstrap", unknown)
    ma = joined[f"{metric}_b"].to_numpy(dtype=bool)
    mc = joined[f"{metric}_c"].to_numpy(dtype=bool)
    r2w = int((ma & ~mc).sum())
    w2r = int((~ma & mc).sum())
    return PairedResult(metric, n, float(a.mean()), float(c.mean()), diff, lo, hi, r2w, w2r,
                        mcnemar_exact(r2w, w2r), "mcnemar", unknown)
