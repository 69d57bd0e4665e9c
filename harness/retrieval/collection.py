"""An existing Chroma collection as the RAG index (`rag: {collection: NAME, server: URL}` or `{..., path: DIR}`).

The team's own collection, built with their chunking and their embedding model, is queried as it is: nothing is
added to it and nothing is embedded on the server (queries always send their vectors; the collection is opened
without an embedding function, so Chroma never loads or downloads one). Its ids, or the metadata field
`doc_id_field` for a collection of chunks, are the document ids that `expected_doc_ids` refer to; its documents,
or the metadata field `text_field` when documents are empty, are the passages shown to the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.models.Collection import Collection
from chromadb.errors import NotFoundError

from harness.config import RagSettings
from harness.errors import HarnessError
from harness.retrieval.chunks import Passage
from harness.retrieval.index import _server_errors, open_client

_QUERY_BATCH = 512


class CollectionError(HarnessError):
    """The configured collection is missing, empty, unreadable or does not fit the queries (one line, exit 2)."""


class ExistingCollection:
    """Query side of a collection someone else built; same `query_many` as RagIndex."""

    def __init__(self, collection: Collection, *, where: str, server: str | None = None,
                 doc_id_field: str | None = None, text_field: str | None = None):
        self.collection = collection
        self.where = where
        self.server = server
        self.doc_id_field = doc_id_field
        self.text_field = text_field
        with _server_errors(server):
            self.n_chunks = collection.count()
            sample = collection.get(limit=1, include=["embeddings", "metadatas", "documents"])
        if self.n_chunks == 0:
            raise CollectionError(f"rag.collection: {collection.name!r} {where} is empty; point rag.collection at "
                                  f"a collection that holds your documents")
        embeddings = sample.get("embeddings")
        self.dim = len(embeddings[0]) if embeddings is not None and len(embeddings) else None
        self._check_row(sample["ids"][0], (sample.get("documents") or [None])[0],
                        (sample.get("metadatas") or [None])[0])

    @property
    def collection_name(self) -> str:
        return self.collection.name

    def _check_row(self, row_id: str, document: str | None, meta: dict[str, Any] | None) -> None:
        meta = meta or {}
        if self.doc_id_field and self.doc_id_field not in meta:
            raise CollectionError(f"rag.doc_id_field: entry {row_id!r} of collection {self.collection_name!r} has no "
                                  f"metadata field {self.doc_id_field!r} (its fields: "
                                  f"{', '.join(sorted(meta)) or 'none'})")
        if not document and not (self.text_field and meta.get(self.text_field)):
            hint = (f"nor a metadata field {self.text_field!r}" if self.text_field
                    else "; name the metadata field that holds its text with rag.text_field")
            raise CollectionError(f"rag.collection: entry {row_id!r} of {self.collection_name!r} has no document "
                                  f"text {hint}")

    def passage(self, row_id: str, document: str | None, meta: dict[str, Any] | None, distance: float) -> Passage:
        self._check_row(row_id, document, meta)
        meta = meta or {}
        doc_id = str(meta[self.doc_id_field]) if self.doc_id_field else row_id
        text = document or str(meta.get(self.text_field or "", ""))
        return Passage(doc_id=doc_id, chunk_id=row_id, text=text, score=1.0 - float(distance))

    def query_many(self, texts: Sequence[str], k: int, vectors: np.ndarray | None = None) -> list[list[Passage]]:
        """Top-`k` entries for each of `vectors` (the queries' embeddings, by the same model as the stored
        ones: the run checked the dimension before the first call), nearest first."""
        if vectors is None:
            from harness.retrieval import embeddings

            vectors = embeddings.embed(list(texts))
        if len(vectors) != len(texts):
            raise ValueError(f"{len(vectors)} vectors for {len(texts)} texts")
        out: list[list[Passage]] = []
        for start in range(0, len(texts), _QUERY_BATCH):
            with _server_errors(self.server):
                found = self.collection.query(query_embeddings=np.asarray(vectors[start:start + _QUERY_BATCH]),
                                              n_results=min(k, self.n_chunks),
                                              include=["documents", "metadatas", "distances"])
            rows = zip(found["ids"], found["documents"] or [], found["metadatas"] or [], found["distances"] or [],
                       strict=True)
            for ids, docs, metas, dists in rows:
                passages = [self.passage(*row) for row in zip(ids, docs, metas, dists, strict=True)]
                out.append(sorted(passages, key=lambda p: p.score, reverse=True))
        return out

    def check_dimension(self, query_dim: int, query_model: str) -> None:
        """Refuse (one line, before any call) queries whose vectors cannot be compared with the stored ones."""
        if self.dim is not None and self.dim != query_dim:
            raise CollectionError(
                f"rag.collection: {self.collection_name!r} {self.where} stores {self.dim}-dimensional embeddings, "
                f"but the queries' embeddings by {query_model} have {query_dim}; set rag.embedding.model to the "
                f"model the collection was built with")


def open_collection(name: str, *, server: str | None = None, path: Path | None = None,
                    doc_id_field: str | None = None, text_field: str | None = None) -> ExistingCollection:
    """The collection `name` on the Chroma server, or in the embedded store folder `path`; one line when it is
    not there, listing the collections that are."""
    if server is None:
        if path is None or not (Path(path) / "chroma.sqlite3").is_file():
            raise CollectionError(f"rag.path: {path} is not a Chroma folder (no chroma.sqlite3 in it); give the "
                                  f"folder your collection was persisted to")
        where = f"in {path}"
    else:
        where = f"on {server}"
    client = open_client(path if server is None else None, server)
    with _server_errors(server):
        try:
            collection = client.get_collection(name=name, embedding_function=None)  # type: ignore[arg-type]
        except NotFoundError:
            names = sorted(c.name for c in client.list_collections())
            raise CollectionError(f"rag.collection: no collection {name!r} {where}; the collections there: "
                                  f"{', '.join(names) if names else 'none'}") from None
    return ExistingCollection(collection, where=where, server=server, doc_id_field=doc_id_field,
                              text_field=text_field)


def open_for_queries(rag: RagSettings, probe: Sequence[str], embedder: Any = None) -> tuple[ExistingCollection, dict[str, Any]]:
    """The collection `rag` (RagSettings) names, checked against the queries before the first call: one probe
    query is embedded (through the vector cache, so its item reuses it) and its length compared with a stored
    vector's. Returns it with the manifest's `rag` entry."""
    coll = open_collection(rag.collection, server=rag.server, path=rag.path, doc_id_field=rag.doc_id_field,
                           text_field=rag.text_field)
    if embedder is not None:
        model = embedder.endpoint.where
        dim = embedder.embed_all(list(probe), "the probe query").shape[1] if probe else None
    else:
        from harness.retrieval.embeddings import EMBEDDING_DIM

        model, dim = "the built-in MiniLM (all-MiniLM-L6-v2; set rag.embedding to use another model)", EMBEDDING_DIM
    if dim is not None:
        coll.check_dimension(dim, model)
    where = {"server": rag.server} if rag.server else {"path": str(rag.path)}
    return coll, {**where, "collection": coll.collection_name, "existing": True, "entries": coll.n_chunks,
                  "dimension": coll.dim, "doc_id_field": rag.doc_id_field, "text_field": rag.text_field}
