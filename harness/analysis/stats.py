"""Confidence intervals and paired tests, so a difference between variants is shown with how sure it is.

Variants answer the *same* held-out items, so comparisons are paired: an item one variant gets right and
another gets wrong is the evidence, not two independent accuracies. Hence a paired bootstrap for the
interval of the difference, and for its p-value a paired test on the same per-item quantity the difference is
measured on (the item's mean score over its repeats): the exact McNemar test when every item's value is 0 or 1
(a binomial test on the discordant items), else a sign-flip test on the per-item differences — exact by
enumeration when few items changed, else seeded resamples. Never a test on majority votes: 2 of 3 repeats
right on every item is a drop from 100% to 66.7% that no majority vote sees. Everything here is deterministic
for a given seed, so a re-built report is byte-identical.

When the task declares clusters (`cluster: metadata.passage`: several items about one document), the cluster is
the unit instead: the difference's interval is the cluster-robust one (harness.analysis.clusters) and the test
flips the signs of whole clusters' summed differences. Several variants compared with one baseline get
Holm-adjusted p-values (`holm`).

The exact binomial tail is computed with integer arithmetic (or in log space for very large samples), the
sign-flip enumeration with numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from harness.analysis import clusters as cl
from harness.records import Record
from harness.scoring.labels import labelled_flags
from harness.scoring.scorers import primary_value

Z95 = 1.959963984540054  # two-sided 95% normal quantile
BOOTSTRAP_SAMPLES = 2000
DEFAULT_SEED = 0
SIGN_FLIP_EXACT_MAX = 20  # up to this many nonzero differences: all 2^n sign patterns (2^20 sums = 8 MB)
SIGN_FLIP_RESAMPLES = 10_000
TEST_NAMES = {"mcnemar": "McNemar", "sign-flip": "sign-flip", "cluster-sign-flip": "clustered sign-flip"}  # PairedResult.test -> how the output names it


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


@dataclass(frozen=True)
class SignFlip:
    """A sign-flip test's p-value and how it was reached. `bound`: no resample reached the observed sum, so
    the p-value is only known to be below 1/resamples, and `p_value` holds that upper bound."""

    p_value: float
    exact: bool
    resamples: int = 0  # 0 when exact
    bound: bool = False


def sign_flip_test(diffs: np.ndarray | list[float], *, exact_max: int = SIGN_FLIP_EXACT_MAX,
                   n_resamples: int = SIGN_FLIP_RESAMPLES, seed: int = DEFAULT_SEED) -> SignFlip:
    """Two-sided paired test of a mean difference (candidate - baseline per item): under no difference each
    item's difference is as likely positive as negative, so the p-value is the share of sign patterns whose
    |sum| reaches the observed |sum|. Items with no difference carry no sign. Valid at any n, for any values
    (per-item means over repeats, graded scores): 4 of 50 items dropping by 0.5 gives 2/16 = 0.125.

    Up to `exact_max` nonzero differences every pattern is enumerated; above that `n_resamples` seeded random
    patterns (drawn as binomial counts per distinct |difference|, so no resamples x items matrix)."""
    d = np.asarray(diffs, dtype=float)
    mags = np.abs(d[np.abs(d) > 1e-12])
    if mags.size == 0:
        return SignFlip(1.0, True)
    observed = abs(float(d.sum()))
    tol = 1e-9 * max(1.0, float(mags.sum()))  # the same sum reached in another order must count
    if mags.size <= exact_max:
        sums = np.zeros(1)
        for m in mags:
            sums = np.concatenate([sums + m, sums - m])
        return SignFlip(float(min(1.0, (np.abs(sums) >= observed - tol).mean())), True)
    values, counts = np.unique(np.round(mags, 12), return_counts=True)
    rng = np.random.default_rng(seed)
    hits, chunk = 0, max(1, 2_000_000 // values.size)
    for start in range(0, n_resamples, chunk):
        heads = rng.binomial(counts, 0.5, size=(min(chunk, n_resamples - start), values.size))
        hits += int((np.abs((2 * heads - counts) @ values) >= observed - tol).sum())
    if hits == 0:
        return SignFlip(1 / n_resamples, False, n_resamples, bound=True)
    return SignFlip(hits / n_resamples, False, n_resamples)


# -- per-item outcomes ---------------------------------------------------------------------------------

def outcomes_frame(records: list[Record], clusters: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per record with the numbers the statistics need; built once per report. With `clusters` (item
    id -> its cluster, from the manifest) a `cluster` column says which cluster each record's item is in (an
    item the map lacks is its own cluster).

    `correct` is the record's *primary* score (harness.scoring.suite): 1/0 for exact match or any pass/fail
    scorer, a value in 0..1 for a graded one, NaN where it is unknown (a judge that failed). Every statistic
    below reads it, so they all work on whichever score the task made primary. `labelled`: accuracy measures the
    record (harness.scoring.scorers.labelled_flags); an item without an expected answer has NaN in `correct` and
    is no unknown score."""
    rows = [
        (r.variant, r.item_id, r.repeat, r.error is None, _primary(r) if measured else float("nan"),
         bool(r.format_valid), r.latency_s, r.cache_hit, r.started_at,
         r.usage.prompt_tokens if r.usage is not None else None, r.cost_usd, measured)
        for r, measured in zip(records, labelled_flags(records), strict=True)
    ]
    frame = pd.DataFrame(rows, columns=["variant", "item_id", "repeat", "answered", "correct", "format_valid",
                                        "latency_s", "cache_hit", "started_at", "prompt_tokens", "cost_usd",
                                        "labelled"])
    if clusters:
        frame["cluster"] = [str(clusters.get(str(i), f"item:{i}")) for i in frame["item_id"]]
    return frame


def _primary(r: Record) -> float:
    v = primary_value(r)  # written by harness.scoring.suite; None = unknown, a failed call 0
    return float("nan") if v is None else v


def item_outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (variant, item): its repeats, the mean of correct / format_valid over them, and the majority vote
    (strictly more than half of the repeats; a tie counts as not correct, so a coin-flip item never counts
    as a success). An unanswered repeat (error) counts as not correct and not valid: every item is in the
    comparison, so a variant cannot gain from failing.

    `correct_rate` is the mean of the known primary scores of the item's repeats (NaN when none is known): the
    quantity accuracy and every paired test are measured on. The majority vote `correct` is shown, never
    tested."""
    if frame.empty:
        return pd.DataFrame(columns=["variant", "item_id", "repeats", "correct_rate", "format_valid_rate",
                                     "correct", "format_valid", "disagree"]
                            ).set_index(["variant", "item_id"])
    g = frame.groupby(["variant", "item_id"], sort=False)
    extra = {"cluster": ("cluster", "first")} if "cluster" in frame.columns else {}
    if "labelled" in frame.columns:
        extra["labelled"] = ("labelled", "all")
    out = g.agg(repeats=("correct", "size"), correct_rate=("correct", "mean"),
                format_valid_rate=("format_valid", "mean"), cmin=("correct", "min"), cmax=("correct", "max"),
                **extra)
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
    voted = its[its["labelled"]] if "labelled" in its.columns else its  # no majority vote without a label
    return RepeatSpread(repeats, n_items, disagreement, std, float(voted["correct"].mean()) if len(voted) else None)


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
    right_to_wrong: int  # items whose value went down (pass/fail, one repeat: right -> wrong)
    wrong_to_right: int  # ... and up
    p_value: float | None  # with p_bound: an upper bound (no resample reached the observed difference)
    test: str = "mcnemar"  # "mcnemar" (every per-item value 0 or 1) or "sign-flip" (sign_flip_test)
    unknown: int = 0  # paired items left out because a side's score is unknown (a judge that failed)
    p_bound: bool = False
    resamples: int = 0  # sign-flip resamples; 0 when the p-value is exact
    clusters: int = 0  # declared clusters the paired items fall in (the unit of interval and test); 0: items

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def paired_compare(base_items: pd.DataFrame, cand_items: pd.DataFrame, metric: str = "correct", *,
                   seed: int = DEFAULT_SEED, n_boot: int = BOOTSTRAP_SAMPLES) -> PairedResult:
    """Pair two per-item tables (indexed by item_id, from item_outcomes) on the items both were asked.
    Everything is measured on the per-item means over repeats (all the information repeats give): the
    difference, its bootstrap interval and the p-value. When every item's value is 0 or 1 on both sides (a
    pass/fail score with one repeat, or repeats that agree) the p-value is the exact McNemar test — the sign
    test on the discordant items, which is what the sign-flip test is on such values; otherwise the sign-flip
    test (`sign_flip_test`). Items whose score is unknown on either side are left out (counted in `unknown`).

    When the tables carry a `cluster` column (the task declared clusters) and some cluster holds several paired
    items, the cluster is the unit: a cluster-robust t interval and a sign-flip test on the clusters' summed
    differences (`clusters` says how many)."""
    rate = f"{metric}_rate"
    if metric == "correct" and "labelled" in base_items.columns and "labelled" in cand_items.columns:
        # an item without an expected answer has no accuracy to pair: not an unknown score either
        base_items, cand_items = base_items[base_items["labelled"]], cand_items[cand_items["labelled"]]
    joined = base_items[[rate]].add_suffix("_b").join(cand_items[[rate]].add_suffix("_c"), how="inner")
    known = joined[f"{rate}_b"].notna() & joined[f"{rate}_c"].notna()
    unknown = int((~known).sum())
    joined = joined[known]
    n = len(joined)
    if n == 0:
        return PairedResult(metric, 0, None, None, None, None, None, 0, 0, None, unknown=unknown)
    a = joined[f"{rate}_b"].to_numpy(dtype=float)
    c = joined[f"{rate}_c"].to_numpy(dtype=float)
    r2w, w2r = int((c < a).sum()), int((c > a).sum())
    labels = _paired_clusters(base_items, joined.index)
    if labels is not None:
        return _clustered_compare(metric, a, c, labels, r2w, w2r, unknown, seed)
    diff, lo, hi = paired_bootstrap(a, c, seed=seed, n_boot=n_boot)  # type: ignore[misc]
    if np.isin(a, (0.0, 1.0)).all() and np.isin(c, (0.0, 1.0)).all():
        return PairedResult(metric, n, float(a.mean()), float(c.mean()), diff, lo, hi, r2w, w2r,
                            mcnemar_exact(r2w, w2r), "mcnemar", unknown)
    sf = sign_flip_test(c - a, seed=seed)
    return PairedResult(metric, n, float(a.mean()), float(c.mean()), diff, lo, hi, r2w, w2r, sf.p_value,
                        "sign-flip", unknown, p_bound=sf.bound, resamples=sf.resamples)


def _paired_clusters(items: pd.DataFrame, ids: pd.Index) -> np.ndarray | None:
    """The cluster of each paired item, when clusters are declared and some cluster holds several of them."""
    if "cluster" not in items.columns:
        return None
    labels = items["cluster"].reindex(ids).astype(str).to_numpy()
    return labels if cl.is_clustered(labels) else None


def _clustered_compare(metric: str, a: np.ndarray, c: np.ndarray, labels: np.ndarray, r2w: int, w2r: int,
                       unknown: int, seed: int) -> PairedResult:
    d = c - a
    lay = cl.layout(labels)
    mean, lo, hi = cl.mean_interval_arrays(d, lay)
    sf = sign_flip_test(cl.cluster_sums(d, lay), seed=seed)
    ok = lay.clusters >= 2
    return PairedResult(metric, d.size, float(a.mean()), float(c.mean()), float(mean), float(lo) if ok else None,
                        float(hi) if ok else None, r2w, w2r, sf.p_value, "cluster-sign-flip", unknown,
                        p_bound=sf.bound, resamples=sf.resamples, clusters=lay.clusters)


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm-adjusted p-values of one family of tests (several variants each compared with one baseline),
    position by position; a missing p-value stays missing and is not counted in the family. Holm controls the
    chance of any false "significant" over the family without assuming the tests independent."""
    known = [(i, float(p)) for i, p in enumerate(p_values) if p is not None and not math.isnan(float(p))]
    out: list[float | None] = [None] * len(p_values)
    if not known:
        return out
    adjusted = multipletests([p for _, p in known], method="holm")[1]
    for (i, _), q in zip(known, adjusted, strict=True):
        out[i] = float(q)
    return out
