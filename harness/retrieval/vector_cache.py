"""Embeddings kept by text: a SQLite file of float32 vectors keyed by the embedding model and the text.

Few-shot selection by similarity and RAG retrieval embed every test item's text (the same text for both) and
the few-shot pool's; the index keeps the documents' vectors in Chroma, this keeps the rest. A re-run of the same
items (another model, another prompt) embeds nothing, and one embedding serves both variants. Like the response
cache it is only an optimisation: a locked or damaged file makes lookups misses, with one warning. A vector from an
embeddings endpoint is kept with the tokens it counted, so a re-run can still charge what production pays; files
written before that column existed gain it on open (their rows have none).
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from harness.retrieval import embeddings
from harness.retrieval.embeddings import EMBEDDING_DIM, EMBEDDING_FUNCTION_NAME

BUSY_TIMEOUT_S = 10.0
_NO_USAGE = -1.0  # the tokens column of a vector whose endpoint reported no usage (NULL: a row kept without tokens)
_CHUNK = 500  # keys per SELECT


def text_key(text: str, model: str = EMBEDDING_FUNCTION_NAME) -> bytes:
    return hashlib.sha256(f"{model}\x00{text}".encode()).digest()


class VectorCache:
    """`embed(texts)` that computes only the texts it has not seen. Thread-safe (one connection, one lock)."""

    def __init__(self, path: Path, embed_fn: Callable[[Sequence[str]], np.ndarray] | None = None,
                 model: str = EMBEDDING_FUNCTION_NAME, dim: int | None = EMBEDDING_DIM):
        self.path = path
        self.embed_fn = embed_fn
        self.model = model
        self.dim = dim  # the vectors' length; None: whatever the model returns (an embeddings endpoint's)
        self.hits = 0
        self.computed = 0
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vec BLOB NOT NULL, tokens REAL)")
            if "tokens" not in {row[1] for row in db.execute("PRAGMA table_info(vectors)")}:
                db.execute("ALTER TABLE vectors ADD COLUMN tokens REAL")
            self._db = db
        except (sqlite3.Error, OSError) as exc:
            self._warn(exc)

    def _warn(self, exc: BaseException) -> None:
        print(f"warning: embedding cache {self.path}: {type(exc).__name__}: {exc}; embeddings are computed "
              f"without it", file=sys.stderr, flush=True)
        self._close_db()

    def _close_db(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
        self._db = None

    def _lookup(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        return {key: vec for key, (vec, _) in self._lookup_tokens(keys).items()}

    def _lookup_tokens(self, keys: list[bytes]) -> dict[bytes, tuple[np.ndarray, float | None]]:
        found: dict[bytes, tuple[np.ndarray, float | None]] = {}
        if self._db is None:
            return found
        try:
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i:i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, vec, tokens FROM vectors WHERE key IN ({marks})", chunk)
                for key, blob, tokens in rows:
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if vec.ndim == 1 and vec.size and (self.dim is None or vec.shape == (self.dim,)):
                        found[key] = (vec, float("nan") if tokens == _NO_USAGE else tokens)
        except sqlite3.Error as exc:
            self._warn(exc)
        return found

    def _store(self, rows: list[tuple[bytes, bytes]] | list[tuple[bytes, bytes, float | None]]) -> None:
        if self._db is None or not rows:
            return
        columns = "(key, vec)" if len(rows[0]) == 2 else "(key, vec, tokens)"
        marks = "(?, ?)" if len(rows[0]) == 2 else "(?, ?, ?)"
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(f"INSERT OR REPLACE INTO vectors {columns} VALUES {marks}", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self._warn(exc)

    def missing(self, texts: Sequence[str]) -> int:
        """How many distinct texts have no vector yet."""
        keys = list(dict.fromkeys(text_key(t, self.model) for t in texts))
        with self._lock:
            return len(keys) - len(self._lookup(keys))

    def lookup(self, texts: Sequence[str]) -> dict[str, tuple[np.ndarray, float | None]]:
        """The vectors already kept, by text, each with the tokens it counted when embedded (NaN: the endpoint
        reported none; None: not kept, a row written before tokens were); texts without a vector are left out."""
        by_key = {text_key(t, self.model): t for t in texts}
        with self._lock:
            found = self._lookup_tokens(list(by_key))
        return {by_key[k]: v for k, v in found.items()}

    def store(self, vectors: dict[str, np.ndarray], tokens: dict[str, float | None] | None = None) -> None:
        """Keep these vectors, by text, with the tokens each counted (an embeddings endpoint's share; None: it
        reported no usage)."""
        tokens = tokens or {}
        rows = [(text_key(t, self.model), np.ascontiguousarray(v, dtype=np.float32).tobytes(),
                 _NO_USAGE if tokens.get(t) is None else tokens[t]) for t, v in vectors.items()]
        with self._lock:
            self._store(rows)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for `texts`, in order; each distinct text is computed at most once, ever."""
        texts = list(texts)
        out = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
        if not texts:
            return out
        keys = [text_key(t, self.model) for t in texts]
        with self._lock:
            found = self._lookup(list(dict.fromkeys(keys)))
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in found:
                missing.setdefault(key, text)
        if missing:
            vecs = (self.embed_fn or embeddings.embed)(list(missing.values()))
            rows = []
            for key, vec in zip(missing, vecs, strict=True):
                vec = np.ascontiguousarray(vec, dtype=np.float32)
                found[key] = vec
                rows.append((key, vec.tobytes()))
            with self._lock:
                self._store(rows)
        for i, key in enumerate(keys):
            out[i] = found[key]
        self.hits += len(texts) - len(missing)
        self.computed += len(missing)
        return out

    def close(self) -> None:
        with self._lock:
            self._close_db()
