"""RAG over a persistent Chroma index: chunking, build-or-reuse, retrieval and its metrics.

Why the index is keyed by a content hash: an eval run rebuilds nothing it does not have to. The
hash of the documents, the chunking settings and the embedding function's name goes into the
collection's name and metadata; a later run with the same inputs finds the collection complete
and reuses it without embedding a single chunk, and any change to a document makes a new one.

The index lives in an embedded store (a folder, ``chromadb.PersistentClient``) or on a Chroma server
(``rag.server``, ``chromadb.HttpClient``) that every machine of a team or a CI matrix shares; naming, the
reuse check and the build are the same for both.

Every Chroma call passes :class:`~harness.retrieval.embeddings.MiniLMEmbeddingFunction` explicitly, because
Chroma's default embedding function downloads an ONNX model and fails offline; over HTTP too, the vectors
are computed here and sent to the server, which never embeds anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import chromadb
import httpx
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings
from chromadb.errors import ChromaError, NotFoundError
from tqdm import tqdm

from harness.config import chroma_server_address
from harness.errors import HarnessError
from harness.retrieval import embeddings
from harness.retrieval.embeddings import EMBEDDING_FUNCTION_NAME, MiniLMEmbeddingFunction

__all__ = [
    "ChromaServerError",
    "Chunk",
    "Doc",
    "DocLike",
    "Passage",
    "RagIndex",
    "chunk_doc",
    "collection_name",
    "docs_hash",
    "nearest_neighbours",
    "open_client",
    "recall_at_k",
    "reciprocal_rank",
    "retrieved_doc_ids",
]

# Bump when chunk_doc's output changes for the same input, so old indexes are not reused.
CHUNKER_VERSION = 1
_ADD_BATCH = 256  # chunks per Chroma add (one embedding call each; also the progress step)
_QUERY_BATCH = 512  # query vectors per Chroma call


class DocLike(Protocol):
    """Anything with an ``id`` and a ``text`` (the eval-set loader's own document type too)."""

    @property
    def id(self) -> str: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class Doc:
    """One knowledge-base document; ``id`` is what ``expected_doc_ids`` refer to."""

    id: str
    text: str


@dataclass(frozen=True)
class Chunk:
    """A piece of a document small enough to embed and to quote in a prompt."""

    doc_id: str
    chunk_id: str
    text: str


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk; ``score`` is cosine similarity (1 - Chroma's cosine distance)."""

    doc_id: str
    chunk_id: str
    text: str
    score: float


# --------------------------------------------------------------------------------------- chunking

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _split_long(text: str, limit: int) -> list[str]:
    """Split one paragraph into pieces of at most ``limit`` chars: sentences, then words, then chars."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        if len(sentence) <= limit:
            pieces.append(sentence)
            continue
        current = ""
        for word in sentence.split():
            while len(word) > limit:  # a token with no spaces (URL, hash): cut it
                if current:
                    pieces.append(current)
                    current = ""
                pieces.append(word[:limit])
                word = word[limit:]
            if not word:
                continue
            candidate = f"{current} {word}" if current else word
            if len(candidate) <= limit:
                current = candidate
            else:
                pieces.append(current)
                current = word
        if current:
            pieces.append(current)
    return pieces


def _tail(text: str, overlap: int) -> str:
    """The last ``overlap`` chars of a chunk, cut at a sentence start, else at a word start."""
    if overlap <= 0 or not text:
        return ""
    if len(text) <= overlap:
        return text.strip()
    before, tail = text[:-overlap], text[-overlap:]
    if before[-1].isspace() and before.rstrip()[-1:] in (".", "!", "?"):
        return tail.strip()  # already at a sentence start
    sentence = _SENTENCE_END.search(tail)
    if sentence is not None and sentence.end() < len(tail):
        return tail[sentence.end() :].strip()
    if not before[-1].isspace():
        word = re.search(r"\s", tail)
        if word is not None:
            tail = tail[word.start() :]
    return tail.strip()


def _check_chunking(max_chars: int, overlap: int) -> None:
    if max_chars < 20:
        raise ValueError(f"max_chars must be at least 20, got {max_chars}")
    if not 0 <= overlap <= max_chars // 2:
        raise ValueError(f"overlap must be between 0 and max_chars // 2 ({max_chars // 2}), got {overlap}")


def chunk_doc(doc: DocLike, max_chars: int = 800, overlap: int = 100) -> list[Chunk]:
    """Split a document into chunks of at most ``max_chars`` characters.

    Paragraphs are kept whole and packed together while they fit, because a passage that stops
    mid-thought retrieves and reads worse; a paragraph too long for one chunk is split at
    sentence ends, then at spaces. Each chunk after the first starts with up to ``overlap``
    characters from the end of the previous one, so a fact that straddles a boundary is still
    found whole in one of them. An empty document has no chunks.
    """
    _check_chunking(max_chars, overlap)
    # Room for the overlap and a paragraph separator, so every chunk fits in max_chars.
    piece_limit = max_chars - overlap - 2
    pieces: list[tuple[str, str]] = []  # (separator before the piece, piece)
    for paragraph in _PARAGRAPH_BREAK.split(doc.text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        for i, piece in enumerate(_split_long(paragraph, piece_limit)):
            pieces.append(("\n\n" if i == 0 else " ", piece))

    texts: list[str] = []
    current = ""
    for separator, piece in pieces:
        if not current:
            current = piece
        elif len(current) + len(separator) + len(piece) <= max_chars:
            current = f"{current}{separator}{piece}"
        else:
            texts.append(current)
            tail = _tail(current, overlap)
            current = f"{tail}{separator}{piece}" if tail else piece
    if current:
        texts.append(current)
    return [Chunk(doc.id, f"{doc.id}#{i}", text) for i, text in enumerate(texts)]


def docs_hash(docs: Iterable[DocLike], *, max_chars: int = 800, overlap: int = 100) -> str:
    """sha256 over everything that decides an index's content.

    Documents are taken in id order, so listing the same files in another order reuses the index.
    """
    digest = hashlib.sha256()
    header = {
        "embedding_function": EMBEDDING_FUNCTION_NAME,
        "chunker": CHUNKER_VERSION,
        "max_chars": max_chars,
        "overlap": overlap,
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for doc in sorted(docs, key=lambda d: d.id):
        digest.update(b"\n")
        digest.update(json.dumps([doc.id, doc.text], ensure_ascii=False).encode())
    return digest.hexdigest()


_NAME_BAD_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_HASH_CHARS = 12


def collection_name(name: str, digest: str) -> str:
    """A Chroma-valid collection name: ``<sanitised name>-<12 hex of the docs hash>``.

    Chroma wants 3-512 characters from ``[A-Za-z0-9._-]``, starting and ending with a letter or
    digit, with no ``..``; the hash suffix guarantees the length and the final character.
    """
    base = _NAME_BAD_CHARS.sub("-", name)
    base = re.sub(r"\.{2,}", ".", base)
    base = base.strip("._-")[: 512 - _HASH_CHARS - 1].rstrip("._-") or "rag"
    return f"{base}-{digest[:_HASH_CHARS]}"


# ----------------------------------------------------------------------------------------- client


class ChromaServerError(HarnessError):
    """The Chroma server named by ``rag.server`` cannot be reached (one line, exit code 2)."""


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _unreachable(server: str, exc: BaseException, what: str = "cannot reach the Chroma server at") -> ChromaServerError:
    host, port, _ = chroma_server_address(server)
    return ChromaServerError(
        f"rag.server: {what} {server} ({_reason(exc)}); start it "
        f"(`chroma run --path DIR --host 0.0.0.0 --port {port}` on {host}) or fix the address, "
        f"or remove rag.server to use the embedded store"
    )


@contextmanager
def _server_errors(server: str | None) -> Iterator[None]:
    """A Chroma server that is down or goes away mid-build is a readable error, not an httpx traceback."""
    if server is None:
        yield
        return
    try:
        yield
    except httpx.TransportError as exc:
        raise _unreachable(server, exc) from None
    except ValueError as exc:  # chromadb.HttpClient's own "Could not connect to a Chroma server"
        if "connect" not in str(exc).lower():
            raise
        raise _unreachable(server, exc) from None


def open_client(persist_dir: Path | None, server: str | None = None) -> ClientAPI:
    """The embedded store in ``persist_dir``, or the Chroma server at ``server`` ("http://HOST:PORT")."""
    settings = Settings(anonymized_telemetry=False)
    if server is None:
        if persist_dir is None:
            raise ValueError("open_client: give persist_dir (the embedded store) or server")
        persist_dir = Path(persist_dir)
        persist_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(persist_dir), settings=settings)
    host, port, ssl = chroma_server_address(server)
    with _server_errors(server):
        try:
            return chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=settings)
        except (ValueError, ChromaError) as exc:
            if "connect" in str(exc).lower():
                raise
            # Something answers there, but not as a Chroma server (its heartbeat failed).
            raise _unreachable(server, exc, "no Chroma server answers at") from None


def _get_collection(client: ClientAPI, name: str, ef: MiniLMEmbeddingFunction) -> Collection | None:
    try:
        return client.get_collection(name=name, embedding_function=ef)  # type: ignore[arg-type]
    except NotFoundError:
        return None


# ------------------------------------------------------------------------------------------ index


class RagIndex:
    """A Chroma collection of document chunks that :meth:`build` made or found up to date."""

    def __init__(
        self,
        collection: Collection,
        *,
        reused: bool,
        n_chunks: int,
        digest: str,
        server: str | None = None,
        embedded: int = 0,
    ) -> None:
        self.collection = collection
        self.reused = reused
        self.n_chunks = n_chunks
        self.docs_hash = digest
        self.server = server
        self.embedded = embedded  # chunks this build embedded (0 when reused)

    @property
    def collection_name(self) -> str:
        return self.collection.name

    @classmethod
    def build(
        cls,
        docs: Iterable[DocLike],
        persist_dir: Path | None,
        name: str,
        *,
        max_chars: int = 800,
        overlap: int = 100,
        show_progress: bool = True,
        server: str | None = None,
    ) -> RagIndex:
        """Open the index for these documents, embedding only what is missing.

        The store is the folder ``persist_dir``, or with ``server`` ("http://HOST:PORT") a running Chroma
        server, in which case ``persist_dir`` is not used. Either way the collection is named by the docs'
        content hash and reused when its stored hash matches and it holds every chunk. A collection with
        fewer chunks (a build that was interrupted, or another process or machine building the same index
        at this moment) is completed: only its missing chunks are embedded, and writes are upserts of
        deterministic ids, so two builders of one index end with the same complete collection.

        In the embedded store, older collections built under the same ``name`` for other document versions
        are deleted, so the folder does not grow with every edit of the knowledge base. On a server they
        are kept: another machine may be running against them right now.
        """
        docs = list(docs)
        seen: set[str] = set()
        for doc in docs:
            if doc.id in seen:
                raise ValueError(f"duplicate document id {doc.id!r}: document ids must be unique")
            seen.add(doc.id)
        chunks = [c for doc in docs for c in chunk_doc(doc, max_chars=max_chars, overlap=overlap)]
        digest = docs_hash(docs, max_chars=max_chars, overlap=overlap)
        coll_name = collection_name(name, digest)

        client = open_client(persist_dir, server)
        ef = MiniLMEmbeddingFunction()
        with _server_errors(server):
            collection = _get_collection(client, coll_name, ef)
            if collection is not None and (collection.metadata or {}).get("docs_hash") != digest:
                client.delete_collection(coll_name)  # a 12-hex-digit name clash with other content
                collection = None
            if collection is not None and collection.count() == len(chunks):
                return cls(collection, reused=True, n_chunks=len(chunks), digest=digest, server=server)

            if collection is None:
                if server is None:
                    for other in client.list_collections():
                        meta = other.metadata or {}
                        if meta.get("harness_index") == name and other.name != coll_name:
                            client.delete_collection(other.name)
                collection = cls._create(client, coll_name, ef, {
                    "harness_index": name,
                    "docs_hash": digest,
                    "embedding_function": EMBEDDING_FUNCTION_NAME,
                    "max_chars": max_chars,
                    "overlap": overlap,
                    "n_docs": len(docs),
                    "n_chunks": len(chunks),
                })
            todo = chunks
            if collection.count():
                present = set(collection.get(include=[])["ids"])
                todo = [c for c in chunks if c.chunk_id not in present]
            # Length-sorted writes: each is one embedding call, and similar lengths pad least.
            ordered = sorted(todo, key=lambda c: len(c.text))
            batch = max(1, min(_ADD_BATCH, client.get_max_batch_size()))
            with tqdm(
                total=len(ordered), desc=f"Embedding {name}", unit="chunk", disable=not show_progress
            ) as bar:
                for start in range(0, len(ordered), batch):
                    part = ordered[start : start + batch]
                    collection.upsert(
                        ids=[c.chunk_id for c in part],
                        documents=[c.text for c in part],
                        metadatas=[{"doc_id": c.doc_id} for c in part],
                    )
                    bar.update(len(part))
        return cls(collection, reused=False, n_chunks=len(chunks), digest=digest, server=server,
                   embedded=len(ordered))

    @staticmethod
    def _create(client: ClientAPI, coll_name: str, ef: MiniLMEmbeddingFunction,
                metadata: dict[str, Any]) -> Collection:
        try:
            return client.create_collection(
                name=coll_name,
                embedding_function=ef,  # type: ignore[arg-type]
                configuration={"hnsw": {"space": "cosine"}},
                metadata=metadata,
            )
        except ChromaError:
            # Another process or machine created it between our look and our create: build into theirs.
            existing = _get_collection(client, coll_name, ef)
            if existing is None:
                raise
            return existing

    def query(self, text: str, k: int) -> list[Passage]:
        """The ``k`` chunks most similar to ``text``, best first."""
        return self.query_many([text], k)[0]

    def query_many(self, texts: Sequence[str], k: int, vectors: np.ndarray | None = None) -> list[list[Passage]]:
        """Top-``k`` passages for each text; all texts are embedded in one batch, unless their ``vectors``
        are given (the runner embeds each batch of items once, through the cache by text, for every
        variant that needs them).
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        texts = list(texts)
        if not texts:
            return []
        if self.n_chunks == 0:
            return [[] for _ in texts]
        if vectors is None:
            vectors = embeddings.embed(texts)
        elif len(vectors) != len(texts):
            raise ValueError(f"{len(vectors)} vectors for {len(texts)} texts")
        n_results = min(k, self.n_chunks)
        results: list[list[Passage]] = []
        for start in range(0, len(texts), _QUERY_BATCH):
            with _server_errors(self.server):
                found = self.collection.query(
                    query_embeddings=vectors[start : start + _QUERY_BATCH],
                    n_results=n_results,
                    include=["documents", "metadatas", "distances"],
                )
            ids = found["ids"]
            documents = found["documents"] or []
            metadatas = found["metadatas"] or []
            distances = found["distances"] or []
            for row_ids, row_docs, row_meta, row_dist in zip(
                ids, documents, metadatas, distances, strict=True
            ):
                passages = [
                    Passage(
                        doc_id=str(meta["doc_id"]) if meta else chunk_id.rsplit("#", 1)[0],
                        chunk_id=chunk_id,
                        text=doc or "",
                        score=1.0 - float(dist),
                    )
                    for chunk_id, doc, meta, dist in zip(row_ids, row_docs, row_meta, row_dist, strict=True)
                ]
                passages.sort(key=lambda p: p.score, reverse=True)
                results.append(passages)
        return results


def retrieved_doc_ids(passages: Iterable[Passage]) -> list[str]:
    """Unique document ids in rank order (several chunks of one doc count once, at its best)."""
    return list(dict.fromkeys(p.doc_id for p in passages))


# ---------------------------------------------------------------------------------------- metrics


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
