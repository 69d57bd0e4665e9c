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

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
from harness.retrieval.chunks import (
    Chunk,
    Doc,
    DocLike,
    Passage,
    chunk_doc,
    collection_name,
    docs_hash,
)
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
    "open_client",
    "retrieved_doc_ids",
]

_ADD_BATCH = 256  # chunks per Chroma add (one embedding call each; also the progress step)
_QUERY_BATCH = 512  # query vectors per Chroma call


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


def _get_collection(client: ClientAPI, name: str, ef: MiniLMEmbeddingFunction | None) -> Collection | None:
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
        embedder: Any = None,
    ) -> None:
        self.collection = collection
        self.reused = reused
        self.n_chunks = n_chunks
        self.docs_hash = digest
        self.server = server
        self.embedded = embedded  # chunks this build embedded (0 when reused)
        self.embedder = embedder  # rag.embedding's QueryEmbedder; None: MiniLM

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
        embedder: Any = None,
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

        ``embedder`` (harness.retrieval.queries.QueryEmbedder, for ``rag.embedding``) embeds the chunks through
        an embeddings endpoint instead of MiniLM; its identity is part of the docs hash, so the two never mix.
        """
        docs = list(docs)
        seen: set[str] = set()
        for doc in docs:
            if doc.id in seen:
                raise ValueError(f"duplicate document id {doc.id!r}: document ids must be unique")
            seen.add(doc.id)
        chunks = [c for doc in docs for c in chunk_doc(doc, max_chars=max_chars, overlap=overlap)]
        ident = embedder.identity if embedder is not None else EMBEDDING_FUNCTION_NAME
        digest = docs_hash(docs, max_chars=max_chars, overlap=overlap, embedding=ident)
        coll_name = collection_name(name, digest)

        client = open_client(persist_dir, server)
        ef = MiniLMEmbeddingFunction() if embedder is None else None  # an endpoint's vectors are sent as such
        with _server_errors(server):
            collection = _get_collection(client, coll_name, ef)
            if collection is not None and (collection.metadata or {}).get("docs_hash") != digest:
                client.delete_collection(coll_name)  # a 12-hex-digit name clash with other content
                collection = None
            if collection is not None and collection.count() == len(chunks):
                return cls(collection, reused=True, n_chunks=len(chunks), digest=digest, server=server,
                           embedder=embedder)

            if collection is None:
                if server is None:
                    for other in client.list_collections():
                        meta = other.metadata or {}
                        if (meta.get("harness_index") == name and other.name != coll_name
                                and meta.get("embedding_function", EMBEDDING_FUNCTION_NAME) == ident):
                            client.delete_collection(other.name)
                collection = cls._create(client, coll_name, ef, {
                    "harness_index": name,
                    "docs_hash": digest,
                    "embedding_function": ident,
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
                    vectors = (None if embedder is None else
                               embedder.embed_all([c.text for c in part], f"the documents of {name}", per_request=False))
                    collection.upsert(
                        ids=[c.chunk_id for c in part],
                        embeddings=vectors,
                        documents=[c.text for c in part],
                        metadatas=[{"doc_id": c.doc_id} for c in part],
                    )
                    bar.update(len(part))
        return cls(collection, reused=False, n_chunks=len(chunks), digest=digest, server=server,
                   embedded=len(ordered), embedder=embedder)

    @staticmethod
    def _create(client: ClientAPI, coll_name: str, ef: MiniLMEmbeddingFunction | None,
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
            vectors = (embeddings.embed(texts) if self.embedder is None
                       else self.embedder.embed_all(texts, "the queries"))
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
