"""Response cache: SQLite, keyed by endpoint + model + the full request, shared by runs and processes."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """The machine-wide cache folder (responses, the Chroma index, the assembled model); tests point it
    at a temporary folder by replacing this function."""
    from harness.models.gguf import cache_dir as shared_cache_dir

    return shared_cache_dir()


def cache_key(base_url: str | None, request: dict[str, Any], repeat: int) -> str:
    """Repeats get their own key, so repeats at temperature > 0 are not collapsed into one answer."""
    blob = json.dumps({"endpoint": base_url or "openai", "request": request, "repeat": repeat},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """WAL-mode SQLite so two runs can share it; commits are batched because an fsync per answer
    would dominate a fast run (a lost batch only costs a re-ask, never a wrong record)."""

    def __init__(self, path: Path, *, commit_every: int = 200):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
        )
        self._pending = 0
        self._commit_every = commit_every
        self._in_tx = False

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in self._db.execute(f"SELECT key, value FROM responses WHERE key IN ({marks})", chunk):
                out[key] = json.loads(value)
        return out

    def put(self, key: str, value: dict[str, Any]) -> None:
        if not self._in_tx:
            self._db.execute("BEGIN")
            self._in_tx = True
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)",
            (key, json.dumps(value, ensure_ascii=False), time.time()),
        )
        self._pending += 1
        if self._pending >= self._commit_every:
            self.commit()

    def commit(self) -> None:
        if self._in_tx:
            for _ in range(50):
                try:
                    self._db.execute("COMMIT")
                    break
                except sqlite3.OperationalError:  # another run holds the write lock for a moment
                    time.sleep(0.1)
            self._in_tx = False
        self._pending = 0

    def close(self) -> None:
        self.commit()
        self._db.close()
