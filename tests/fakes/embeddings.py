"""The loopback fake's `/v1/embeddings` route (mixed into FakeOpenAIServer).

Vectors are deterministic: each word of a text (lower-cased letters and digits) adds 1 to the coordinate its
sha256 picks, and the sum is scaled to unit length, so texts that share words are near each other, as with a
real embedding model, and a test can compute the same vectors itself (`fake_embedding`). usage.prompt_tokens
counts the words of every input. Faults: the next `embedding_failures` requests answer 500 (with Retry-After: 0,
so retries do not sleep), and every request with `embedding_fail_text` in one of its inputs answers
`embedding_fail_status` (500 unless a test sets another).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from typing import Any

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def fake_embedding(text: str, dim: int) -> np.ndarray:
    vec = np.zeros(dim, dtype=np.float32)
    for word in words(text) or [""]:
        vec[int(hashlib.sha256(word.encode()).hexdigest()[:8], 16) % dim] += 1.0
    return vec / np.linalg.norm(vec)


class EmbeddingsRoute:
    """State and answers of the fake's embeddings endpoint."""

    embedding_dim: int = 16
    embedding_failures: int = 0  # the next N requests answer 500
    embedding_fail_text: str | None = None  # requests with this text in an input answer 500, always
    embedding_fail_status: int = 500  # the status those failures answer with (401: a refused key)

    @property
    def embedding_requests(self) -> list[dict[str, Any]]:
        """The bodies of the embeddings requests that were answered 200 or failed, in order of arrival."""
        return self.__dict__.setdefault("_embedding_requests", [])

    def answer_embeddings(self, body: dict[str, Any]) -> tuple[int, bytes, dict[str, str]]:
        """(status, JSON payload, headers) for one POST /embeddings."""
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        with self.__dict__.setdefault("_embedding_lock", threading.Lock()):
            self.embedding_requests.append(body)
            fail = self.embedding_failures > 0
            if fail:
                self.embedding_failures -= 1
        if fail or (self.embedding_fail_text and any(self.embedding_fail_text in str(t) for t in inputs)):
            err = {"error": {"message": "injected embeddings failure", "type": "fake", "code": None}}
            return self.embedding_fail_status, json.dumps(err).encode(), {"retry-after": "0"}
        data = []
        for i, text in enumerate(inputs):
            vec = fake_embedding(str(text), self.embedding_dim)
            value: Any = (base64.b64encode(vec.tobytes()).decode() if body.get("encoding_format") == "base64"
                          else vec.tolist())
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(len(words(str(t))) for t in inputs)
        payload = {"object": "list", "data": data, "model": body.get("model", "fake-embedding"),
                   "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        return 200, json.dumps(payload).encode(), {}
