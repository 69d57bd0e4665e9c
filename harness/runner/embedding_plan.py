"""rag.embedding at planning time: the embedding model's client, price and vector cache, built once for the run
when a variant that embeds its own queries runs, and how the manifest describes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config import RunConfig, api_key_for, header_values
from harness.models import pricing
from harness.retrieval.embedding_endpoint import EmbeddingsEndpoint
from harness.retrieval.queries import QueryEmbedder
from harness.retrieval.vector_cache import VectorCache
from harness.runner.variant_plan import resolve_model_id


def query_embedder(cfg: RunConfig, prices: pricing.PriceTable, cache_dir: Path) -> QueryEmbedder:
    """The QueryEmbedder of `rag.embedding` (the config checked that its model is one of `models:`)."""
    assert cfg.rag.embedding is not None
    name = cfg.rag.embedding.model
    m = cfg.models[name]
    model_id = resolve_model_id(cfg, name)
    endpoint = EmbeddingsEndpoint(name, m, model_id, api_key_for(m), header_values(m), prices.for_model(m, model_id))
    cache = VectorCache(cache_dir / "embeddings.sqlite", model=endpoint.identity, dim=None)
    return QueryEmbedder(endpoint, cache, cfg.rag.embedding.batch_size)


def describe(embedder: QueryEmbedder) -> dict[str, Any]:
    """The manifest's `rag.embedding` entry: which model embedded, at what price, and what was spent before the
    first call (an index's documents; a probe query, whose cost its item's record carries)."""
    e = embedder.endpoint
    return {"model": e.name, "model_id": e.model_id, "identity": e.identity, "batch_size": embedder.batch_size,
            "price": pricing.describe(e.price) if e.price else None,
            "requests_before_calls": e.requests, "tokens_before_calls": e.tokens}
