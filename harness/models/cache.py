"""Response cache: SQLite, keyed by the answering endpoint and the exact body sent, shared by runs and processes.

Several runs may share one cache file, and a cache is only ever an optimisation, so two rules hold:

* **Write transactions are short.** Answers are handed to one writer thread that commits every
  `commit_every` answers or `commit_interval_s` seconds, whichever comes first, and holds SQLite's write
  lock only while it writes a batch (milliseconds), never while waiting for answers. A slow run therefore
  never locks another run out for longer than one batch takes to write.
* **A cache error never stops a run.** A locked, full or corrupt cache file makes the affected lookups
  misses and the affected answers uncached, with one warning on stderr; the run goes on.

No SQLite call blocks the event loop: `put` only queues, `aget` runs the lookup in a worker thread. The bulk
`get_many` prefetch runs before the event loop starts and stays synchronous.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import queue
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

COMMIT_EVERY = 50
COMMIT_INTERVAL_S = 1.0
# How long one SQLite call waits for another process's write lock before the cache gives up on that call.
BUSY_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 60.0

_STOP = object()


def cache_dir() -> Path:
    """The machine-wide cache folder (responses, the Chroma index, the assembled model); tests point it
    at a temporary folder by replacing this function."""
    from harness.models.gguf import cache_dir as shared_cache_dir

    return shared_cache_dir()


def cache_key(endpoint: str | None, body: dict[str, Any], repeat: int) -> str:
    """`endpoint` identifies who answers (the resolved URL, or for the embedded model its files, runtime and
    settings); `body` is the JSON body actually posted (extra_body merged). Repeats get their own key, so
    repeats at temperature > 0 are not collapsed into one answer."""
    blob = json.dumps({"endpoint": endpoint or "openai", "request": body, "repeat": repeat},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """WAL-mode SQLite shared by runs and processes; see the module docstring for the locking rules."""

    def __init__(self, path: Path, *, commit_every: int = COMMIT_EVERY, commit_interval_s: float = COMMIT_INTERVAL_S,
                 timeout_s: float = BUSY_TIMEOUT_S):
        self.path = path
        self._commit_every = max(1, commit_every)
        self._commit_interval_s = commit_interval_s
        self._timeout_s = timeout_s
        self._warned = False
        self._warn_lock = threading.Lock()
        self._read_lock = threading.Lock()  # the reader connection serves the prefetch and worker threads
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._connect()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
            )
            self._db.execute("SELECT key FROM responses LIMIT 1").fetchall()  # a corrupt file fails here, not later
        except (sqlite3.Error, OSError) as exc:
            self._degrade(exc)
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
            self._db = None

    @property
    def usable(self) -> bool:
        return self._db is not None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=self._timeout_s, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit is a write, not an fsync
        return db

    def _degrade(self, exc: BaseException) -> None:
        """Report the first cache error of this cache; later ones only cost cache hits, silently."""
        with self._warn_lock:
            if self._warned:
                return
            self._warned = True
        print(f"warning: response cache {self.path}: {type(exc).__name__}: {exc}; the run goes on and treats "
              f"what it cannot read or write as not cached (further cache errors are not shown)",
              file=sys.stderr, flush=True)

    # -- reads -----------------------------------------------------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        if self._db is None:
            return None
        try:
            with self._read_lock:
                row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
            return json.loads(row[0]) if row else None
        except (sqlite3.Error, ValueError) as exc:
            self._degrade(exc)
            return None

    async def aget(self, key: str) -> dict[str, Any] | None:
        """`get` off the event loop: a lookup that waits on the file never stalls the other calls."""
        if self._db is None:
            return None
        return await asyncio.to_thread(self.get, key)

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if self._db is None:
            return out
        try:
            with self._read_lock:
                for i in range(0, len(keys), 500):
                    chunk = keys[i:i + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = self._db.execute(f"SELECT key, value FROM responses WHERE key IN ({marks})", chunk)
                    for key, value in rows:
                        out[key] = json.loads(value)
        except (sqlite3.Error, ValueError) as exc:
            self._degrade(exc)
        return out

    # -- writes ----------------------------------------------------------------------------------------
    def put(self, key: str, value: dict[str, Any]) -> None:
        """Queue an answer for the writer thread; never blocks and never raises."""
        if self._db is None:
            return
        if self._writer is None:
            with self._warn_lock:
                if self._writer is None:
                    writer = threading.Thread(target=self._write_loop, name="response-cache-writer", daemon=True)
                    writer.start()
                    self._writer = writer
        self._queue.put((key, value, time.time()))

    def commit(self) -> None:
        """Wait until every answer queued so far is written (or given up on)."""
        if self._writer is None or not self._writer.is_alive():
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait(CLOSE_TIMEOUT_S)

    def _write_loop(self) -> None:
        try:
            db = self._connect()
        except sqlite3.Error as exc:
            self._degrade(exc)
            db = None
        stop = False
        while not stop:
            batch: list[tuple[str, dict[str, Any], float]] = []
            flushed: list[threading.Event] = []
            item = self._queue.get()
            deadline = time.monotonic() + self._commit_interval_s
            while True:
                if item is _STOP:
                    stop = True
                    break
                if isinstance(item, threading.Event):
                    flushed.append(item)
                    break
                batch.append(item)
                remaining = deadline - time.monotonic()
                if len(batch) >= self._commit_every or remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if batch and db is not None:
                self._write(db, batch)
            for event in flushed:
                event.set()
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    def _write(self, db: sqlite3.Connection, batch: list[tuple[str, dict[str, Any], float]]) -> None:
        """One short transaction: the write lock is taken (waiting at most timeout_s) and released here."""
        try:
            rows = [(key, json.dumps(value, ensure_ascii=False), created) for key, value, created in batch]
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)", rows)
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
        except Exception as exc:  # noqa: BLE001 - locked, full, corrupt, unserialisable: the answer is just not cached
            self._degrade(exc)

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(_STOP)
            writer.join(CLOSE_TIMEOUT_S)
            if writer.is_alive():
                self._degrade(TimeoutError(f"answers still unwritten after {CLOSE_TIMEOUT_S:.0f} s"))
        db, self._db = self._db, None
        if db is not None:
            with self._read_lock, contextlib.suppress(sqlite3.Error):
                db.close()
