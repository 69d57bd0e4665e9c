"""Embeddings from an OpenAI-style `/embeddings` endpoint (`rag.embedding: {model: NAME}`), instead of MiniLM.

The model is one of `models:` (provider openai, azure or openai-compatible), reached with its base_url, key
and headers as a chat model is. Its vectors are kept by (model, text) in the vector cache, so a re-run embeds
nothing; what a query's embedding costs is charged to every record that uses it, cached or not, because a
deployed RAG pipeline pays it on every request. A call is retried on the same transient failures as a chat
call; one that still fails makes its items error records (harness.retrieval.queries), never an empty
retrieval; a permanent refusal (bad key, unknown model) stops the run with one line.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.config import ModelConfig
from harness.errors import HarnessError
from harness.models.client import PERMANENT_KINDS, retry_after_s, server_message
from harness.models.pricing import Price
from harness.models.providers import provider_for
from harness.redact import redact_url

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0


class EmbeddingRefused(HarnessError):
    """The embeddings endpoint refused for good (credentials, unknown model, a bad request): one line, exit 2."""


class EmbeddingCallFailed(Exception):
    """An embeddings request that failed after its retries (the endpoint down, 5xx, timeouts, a bad body)."""

    def __init__(self, kind: str, message: str, attempts: int):
        super().__init__(message)
        self.kind = kind
        self.attempts = attempts


@dataclass
class EmbeddingsEndpoint:
    """One embedding model of `models:`. Thread-safe; the SDK client is built on first use."""

    name: str  # the config's name under models:
    cfg: ModelConfig = field(repr=False)
    model_id: str
    api_key: str | None = field(repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    price: Price | None = None
    requests: int = 0  # requests that answered, this run
    tokens: int = 0  # their prompt tokens
    _client: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def identity(self) -> str:
        """What the vector cache and a harness-built index are keyed by: vectors of two models never mix."""
        return f"embeddings:{self.cfg.provider}:{self.model_id}"

    @property
    def where(self) -> str:
        return f"models.{self.name} ({self.model_id})"

    def cost(self, tokens: float | None) -> float | None:
        """USD for `tokens` input tokens; None when the price or the tokens are unknown."""
        if tokens is None or self.price is None or not self.price.known:
            return None
        return tokens * self.price.input / 1_000_000

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import openai

                common: dict[str, Any] = {"max_retries": 0, "default_headers": self.headers or None,
                                          "timeout": self.cfg.timeout_s}
                if self.cfg.provider == "azure":
                    self._client = openai.AzureOpenAI(azure_endpoint=self.cfg.endpoint,
                                                      azure_deployment=self.cfg.deployment,
                                                      api_version=self.cfg.api_version,
                                                      api_key=self.api_key or "not-set", **common)
                else:  # Local servers and gateways accept any key; the SDK insists on one.
                    self._client = openai.OpenAI(base_url=self.cfg.base_url, api_key=self.api_key or "not-needed",
                                                 **common)
            return self._client

    def embed(self, texts: list[str]) -> tuple[np.ndarray, int | None]:
        """One request for `texts`: their vectors (float32 rows, in order) and the prompt tokens it reported
        (None when the server reports no usage: the cost is then unknown, never $0)."""
        import openai

        provider = provider_for(self.cfg)
        attempts = 0
        while True:
            attempts += 1
            try:
                resp = self.client().embeddings.create(model=self.model_id, input=texts, encoding_format="float")
                vectors, tokens = self._read(resp, len(texts))
            except (openai.APIError, ValueError) as exc:
                kind, retryable, status = (provider.classify(exc) if isinstance(exc, openai.APIError)
                                           else ("bad_response", False, None))
                if kind in PERMANENT_KINDS:
                    raise EmbeddingRefused(self._scrub(
                        f"rag.embedding: {self.where} refused the embeddings request (HTTP {status}: "
                        f"{server_message(exc)}); check the model's `model`, base_url and key")) from None
                if retryable and attempts <= self.cfg.max_retries:
                    pause = retry_after_s(exc)
                    if pause is None:
                        pause = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempts - 1)) * (0.5 + random.random())
                    time.sleep(min(pause, BACKOFF_CAP_S))
                    continue
                what = server_message(exc) if isinstance(exc, openai.APIError) else str(exc)
                raise EmbeddingCallFailed(
                    kind, self._scrub(f"embeddings request to {self.where} at {redact_url(str(self.client().base_url))} "
                                      f"failed after {attempts} attempt(s): {kind}: {what}")[:500], attempts) from None
            with self._lock:
                self.requests += 1
                self.tokens += tokens or 0
            return vectors, tokens

    def _scrub(self, text: str) -> str:
        """Errors reach records and the terminal: the key and header values never do."""
        for secret in [self.api_key or "", *self.headers.values()]:
            if len(secret) >= 8:
                text = text.replace(secret, "***")
        return text

    @staticmethod
    def _read(resp: Any, n: int) -> tuple[np.ndarray, int | None]:
        """The response's vectors in input order, checked (ValueError: a bad response)."""
        data = getattr(resp, "data", None)
        if not isinstance(data, list) or len(data) != n:
            raise ValueError(f"expected {n} embeddings, got {len(data) if isinstance(data, list) else 'none'}")
        rows = sorted(data, key=lambda d: getattr(d, "index", 0))
        try:
            vectors = np.asarray([r.embedding for r in rows], dtype=np.float32)
        except (TypeError, ValueError, AttributeError):
            raise ValueError("the embeddings are not lists of numbers of one length") from None
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise ValueError("the embeddings are not lists of numbers of one length")
        usage = getattr(resp, "usage", None)
        tokens = getattr(usage, "prompt_tokens", None)
        return vectors, tokens if isinstance(tokens, int) else None
