"""rag.embedding at planning time: the embedding model's client, price and vector cache, built once for the run
when a variant that embeds its own queries runs."""

from __future__ import annotations

from pathlib import Path

from harness.config import RunConfig, api_key_for, header_values
from harness.models import pricing
from harness.models.embeddings_client import EmbeddingsEndpoint
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

