"""Intervals whose unit is the cluster, not the record: an item's repeats, or the several items a task declares
as one cluster (`cluster: metadata.passage` in task.yaml: several questions about one document).

Records of one item (its repeats) or items of one passage are not independent evidence: an interval that counts
them as such is too narrow and covers the truth less often than it says (tests/analysis/test_clustered.py shows
the naive one at well under 95% when answers within a cluster are strongly alike). The cluster-robust
("sandwich") variance of a mean treats each cluster as one draw:

    mean = sum(x) / n,   var(mean) = C / (C - 1) * sum_c (S_c - mean * m_c)^2 / n^2

with S_c the sum and m_c the count of cluster c's values and C the number of clusters (Miller, "Adding Error
Bars to Evals", 2024). With one value per cluster it is the usual var(x, ddof=1) / n. Intervals use Student's t
with C - 1 degrees of freedom, so few clusters widen them.

Everything here takes a leading axis of independent samples (shape (..., n)) sharing one cluster layout, so a
simulation of thousands of runs is one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class Layout:
    """Which cluster each value belongs to, sorted once so cluster sums are one np.add.reduceat."""

    order: np.ndarray  # value positions, grouped by cluster
    starts: np.ndarray  # where each cluster starts in `order`
    sizes: np.ndarray  # m_c

    @property
    def clusters(self) -> int:
        return int(self.sizes.size)


def layout(labels: Sequence[Any] | np.ndarray) -> Layout:
    """The layout of a sequence of cluster labels (any hashable values; equal labels = one cluster)."""
    _, codes = np.unique(np.asarray([str(x) for x in labels], dtype=object).astype(str), return_inverse=True)
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    return Layout(order, starts, sizes)


def cluster_sums(values: np.ndarray, lay: Layout) -> np.ndarray:
    """S_c for every cluster, along the last axis."""
    return np.add.reduceat(np.asarray(values, dtype=float)[..., lay.order], lay.starts, axis=-1)


def clustered_mean_se(values: np.ndarray, lay: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(mean, cluster-robust standard error of the mean) along the last axis; NaN se with fewer than 2
    clusters."""
    x = np.asarray(values, dtype=float)
    n = x.shape[-1]
    sums = cluster_sums(x, lay)
    mean = sums.sum(axis=-1) / n
    c = lay.clusters
    if c < 2:
        return mean, np.full_like(mean, np.nan)
    resid = sums - mean[..., None] * lay.sizes
    var = c / (c - 1) * (resid**2).sum(axis=-1) / n**2
    return mean, np.sqrt(var)


def t_quantile(clusters: int, level: float = 0.95) -> float:
    return float(sps.t.ppf(1 - (1 - level) / 2, max(clusters - 1, 1)))


def mean_interval_arrays(values: np.ndarray, lay: Layout,
                         level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lo, hi): mean +- t(C-1) * clustered se; for a difference of scores (a paired comparison)."""
    mean, se = clustered_mean_se(values, lay)
    half = t_quantile(lay.clusters, level) * se
    return mean, mean - half, mean + half


def mean_interval(values: Sequence[float] | np.ndarray, clusters: Sequence[Any] | np.ndarray,
                  level: float = 0.95) -> tuple[float, float, float] | None:
    """(mean, lo, hi) of values whose clusters are given label by label; None with fewer than 2 clusters."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return None
    lay = layout(clusters)
    if lay.clusters < 2:
        return None
    mean, lo, hi = mean_interval_arrays(x, lay, level)
    return float(mean), float(lo), float(hi)


def share_interval_arrays(values: np.ndarray, lay: Layout, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) for the mean of 0..1 scores: a Wilson interval at the *effective* sample size
    n_eff = p(1 - p) / var_clustered(mean), with t(C-1) for z. It is the Wilson interval when every record is its
    own cluster, stays inside 0..1, and at 0% or 100% (no spread to estimate) uses the C clusters as n."""
    x = np.asarray(values, dtype=float)
    p, se = clustered_mean_se(x, lay)
    n_records = x.shape[-1]
    c = lay.clusters
    spread = p * (1 - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = np.where((se > 0) & (spread > 0), spread / se**2, c)
    n_eff = np.clip(np.nan_to_num(n_eff, nan=c), 1, n_records)
    z = t_quantile(c, level)
    z2 = z * z
    denom = 1 + z2 / n_eff
    centre = (p + z2 / (2 * n_eff)) / denom
    half = z * np.sqrt(np.maximum(spread / n_eff + z2 / (4 * n_eff**2), 0.0)) / denom
    lo = np.where(p <= 0, 0.0, np.maximum(0.0, centre - half))
    hi = np.where(p >= 1, 1.0, np.minimum(1.0, centre + half))
    return lo, hi


def share_interval(values: Sequence[float] | np.ndarray, clusters: Sequence[Any] | np.ndarray,
                   level: float = 0.95) -> tuple[float, float] | None:
    """95% interval of a share (accuracy) whose records are clustered (an item's repeats, a passage's
    questions); None when there is nothing or fewer than 2 clusters."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return None
    lay = layout(clusters)
    if lay.clusters < 2:
        return None
    lo, hi = share_interval_arrays(x, lay, level)
    return float(lo), float(hi)


def is_clustered(clusters: Sequence[Any] | np.ndarray) -> bool:
    """Whether some cluster holds more than one value (else every value is its own unit)."""
    labels = [str(x) for x in clusters]
    return len(set(labels)) < len(labels)
