"""Retrieval for a batch of items when the queries are embedded by an embeddings endpoint (rag.embedding).

Each batch's distinct query texts are looked up in the vector cache by (model, text); the rest go to the
endpoint `batch_size` texts per request. A request's reported tokens are split evenly over its texts and kept
with each vector, and every record that uses a text is charged its share: a deployed RAG pipeline embeds each
request's query, so the cost per request is the same whether this run found the vector in the cache or not
(like a cached chat answer, which keeps its cost); `retrieval_cost.cached` says which. A vector kept before
tokens were is charged an estimate from its text (one token per 4 characters, as the rate limiter counts),
marked `estimated`. A text whose request failed after retries gets no passages but an error, which makes its
record an error record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from harness.errors import HarnessError
from harness.models import pricing
from harness.models.embeddings_client import EmbeddingCallFailed, EmbeddingsEndpoint
from harness.models.ratelimit import estimate_tokens
from harness.retrieval.chunks import Passage
from harness.retrieval.vector_cache import VectorCache


class Searchable(Protocol):
    def query_many(self, texts: Sequence[str], k: int, vectors: np.ndarray | None = None) -> list[list[Passage]]: ...


@dataclass
class QueryOutcome:
    """One item's retrieval: its passages, or why there are none (error); what its embedding cost."""

    passages: list[Passage] | None
    cost: dict[str, Any]
    error: str | None = None
    error_kind: str | None = None


class QueryEmbedder:
    """Query (and document) embeddings through one endpoint, cached by text. Used from one thread at a time
    (the prompt stream's worker, or planning before it starts)."""

    def __init__(self, endpoint: EmbeddingsEndpoint, cache: VectorCache | None, batch_size: int = 64):
        self.endpoint = endpoint
        self.cache = cache
        self.batch_size = batch_size
        self._fresh: set[str] = set()  # texts embedded this run and not yet used by a record
        self._tokens: dict[str, dict[str, Any]] = {}  # text -> the tokens its embedding counts, and how known

    @property
    def identity(self) -> str:
        return self.endpoint.identity

    def vectors(self, texts: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, EmbeddingCallFailed]]:
        """Vectors by text (from the cache, else one request per `batch_size` missing texts), and the texts
        whose request failed after retries."""
        distinct = list(dict.fromkeys(texts))
        kept = self.cache.lookup(distinct) if self.cache is not None else {}
        found = {t: vec for t, (vec, _) in kept.items()}
        for text, (_, tokens) in kept.items():
            self._tokens.setdefault(text, self._kept_tokens(text, tokens))
        missing = [t for t in distinct if t not in found]
        failed: dict[str, EmbeddingCallFailed] = {}
        for start in range(0, len(missing), self.batch_size):
            part = missing[start:start + self.batch_size]
            try:
                vecs, tokens = self.endpoint.embed(part)
            except EmbeddingCallFailed as exc:
                failed.update(dict.fromkeys(part, exc))
                continue
            share = tokens / len(part) if tokens is not None else None
            new = dict(zip(part, vecs, strict=True))
            for text in part:
                self._fresh.add(text)
                self._tokens[text] = {"tokens": share, "split": f"even share of one embeddings request's {tokens} "
                                                                f"tokens over its {len(part)} text(s)"}
            found.update(new)
            if self.cache is not None:
                self.cache.store(new, dict.fromkeys(part, share))
        return found, failed

    @staticmethod
    def _kept_tokens(text: str, tokens: float | None) -> dict[str, Any]:
        """What a cached vector's embedding counts: the share kept with it, or an estimate from its text."""
        if tokens is None:
            return {"tokens": estimate_tokens({"messages": [{"content": text}]}), "estimated": True,
                    "split": "estimated from the text (one token per 4 characters): the cached vector was kept "
                             "without its token count"}
        if tokens != tokens:  # NaN: the endpoint reported no usage when it embedded the text
            return {"tokens": None, "split": "the embeddings endpoint reported no usage"}
        return {"tokens": tokens, "split": "the share kept with the cached vector"}

    def embed_all(self, texts: Sequence[str], what: str, *, per_request: bool = True) -> np.ndarray:
        """Every text's vector, or a one-line error naming `what` was being embedded (the documents of an index
        the harness builds, the probe query): without them the run cannot go on. `per_request=False` (documents)
        keeps their cost off the records: it is the index's, reported in the manifest."""
        found, failed = self.vectors(texts)
        if not per_request:
            self._fresh.difference_update(texts)
        if failed:
            raise HarnessError(f"rag.embedding: embedding {what} failed: {next(iter(failed.values()))}")
        return np.stack([found[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)

    def charge(self, text: str) -> dict[str, Any]:
        """The `retrieval_cost` of a record that uses `text`: what embedding its query costs per request.
        `cached` is False only for the first record after the endpoint embedded it this run."""
        known = self._tokens[text]
        cached = text not in self._fresh
        self._fresh.discard(text)
        return {"embedding_model": self.endpoint.name, "model_id": self.endpoint.model_id, "cached": cached,
                **known, "cost_usd": self.endpoint.cost(known["tokens"])}

    def describe(self) -> dict[str, Any]:
        """The manifest's `rag.embedding` entry: which model embedded, at what price, and what was spent before the
        first call (an index's documents; a probe query, whose cost its item's record carries)."""
        e = self.endpoint
        return {"model": e.name, "model_id": e.model_id, "identity": e.identity, "batch_size": self.batch_size,
                "price": pricing.describe(e.price) if e.price else None,
                "requests_before_calls": e.requests, "tokens_before_calls": e.tokens}

    def retrieve(self, index: Searchable, texts: Sequence[str], k: int) -> list[QueryOutcome]:
        """Top-`k` passages for each text, in order; a text whose embedding failed gets an error instead."""
        found, failed = self.vectors(texts)
        ok = [t for t in texts if t in found]
        results = iter(index.query_many(ok, k, vectors=np.stack([found[t] for t in ok])) if ok else [])
        out: list[QueryOutcome] = []
        for text in texts:
            if text in found:
                out.append(QueryOutcome(next(results), self.charge(text)))
            else:
                exc = failed[text]
                out.append(QueryOutcome(None, {"embedding_model": self.endpoint.name, "cost_usd": None},
                                        error=str(exc), error_kind=exc.kind))
        return out
