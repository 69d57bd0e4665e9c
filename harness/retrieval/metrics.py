"""Retrieval quality (recall@k, reciprocal rank) and the nearest-neighbour search used to pick few-shot
examples by similarity."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def _expected_set(expected_ids: Iterable[str]) -> set[str]:
    expected = set(expected_ids)
    if not expected:
        raise ValueError("expected_ids is empty: retrieval metrics need at least one expected doc id")
    return expected


def recall_at_k(expected_ids: Iterable[str], retrieved_ids: Sequence[str], k: int) -> float:
    """Share of the expected doc ids among the first ``k`` unique retrieved doc ids."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    expected = _expected_set(expected_ids)
    top = list(dict.fromkeys(retrieved_ids))[:k]
    return len(expected.intersection(top)) / len(expected)


def reciprocal_rank(expected_ids: Iterable[str], retrieved_ids: Sequence[str]) -> float:
    """1 / rank of the first expected doc among unique retrieved doc ids; 0 when none is found."""
    expected = _expected_set(expected_ids)
    for rank, doc_id in enumerate(dict.fromkeys(retrieved_ids), start=1):
        if doc_id in expected:
            return 1.0 / rank
    return 0.0


# ------------------------------------------------------------------------------ nearest neighbours


def nearest_neighbours(query_vecs: np.ndarray, pool_vecs: np.ndarray, k: int) -> np.ndarray:
    """Indices into ``pool_vecs`` of each query's ``k`` most cosine-similar rows, best first.

    Shape ``(n_queries, min(k, n_pool))``. Used to pick few-shot examples by similarity; plain
    numpy because the pool (a train split) is small and needs no index.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    queries = np.asarray(query_vecs, dtype=np.float32)
    pool = np.asarray(pool_vecs, dtype=np.float32)
    if queries.ndim != 2 or pool.ndim != 2 or queries.shape[1] != pool.shape[1]:
        raise ValueError(f"expected 2-D arrays with the same width, got {queries.shape} and {pool.shape}")
    k = min(k, pool.shape[0])
    if k == 0 or queries.shape[0] == 0:
        return np.zeros((queries.shape[0], k), dtype=np.int64)
    queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    pool = pool / np.maximum(np.linalg.norm(pool, axis=1, keepdims=True), 1e-12)
    out = np.empty((queries.shape[0], k), dtype=np.int64)
    for start in range(0, queries.shape[0], 1024):  # bounds the similarity matrix's memory
        sims = queries[start : start + 1024] @ pool.T
        if k < pool.shape[0]:
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(pool.shape[0]), sims.shape).copy()
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        out[start : start + 1024] = np.take_along_axis(top, order, axis=1)
    return out
