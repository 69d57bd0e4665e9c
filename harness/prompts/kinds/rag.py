"""rag: the `top_k` passages of the eval set's docs (or of an existing collection, rag.collection) nearest to the
item, above its input. The index is built (or reused, or opened and checked) once before the first call; retrieval
runs batch by batch while calls are in flight, with the queries embedded by MiniLM or by rag.embedding's model."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from harness.prompts.kinds.base import Need, PrepareContext, Resources, VariantKind
from harness.prompts.variants import BatchPreparer, EmbedFn, Prepared, query_texts
from harness.records import EvalItem

if TYPE_CHECKING:
    import numpy as np

INDEX = "rag_index"


class Rag(VariantKind):
    name: ClassVar[str] = "rag"

    top_k: int = Field(default=4, ge=1)

    def needs(self, ctx: PrepareContext) -> list[Need]:
        rag = ctx.rag
        where = f"server={rag.server}" if rag.server else f"index_dir={rag.index_dir or ctx.cache_dir}"
        fingerprint = (f"{INDEX}|{ctx.evalset.content_hash}|{rag.chunk_chars}/{rag.chunk_overlap}|{where}")
        if rag.collection:
            fingerprint = f"{INDEX}|collection={rag.collection}|{rag.server or rag.path}|{rag.doc_id_field}"
        if rag.embedding:
            fingerprint += f"|embedding={rag.embedding.model}"
        return [Need(INDEX, fingerprint, build_index)]

    def embeds_own_queries(self, ctx: PrepareContext) -> bool:
        return ctx.rag.embedding is not None

    def skip_reason(self, ctx: PrepareContext) -> str | None:
        if ctx.evalset.docs or ctx.rag.collection:
            return None
        return (f"the eval set has no docs/ or docs.jsonl under {ctx.evalset.path}; add the knowledge base there, "
                f"or leave this variant out (--variants)")

    @property
    def streamed(self) -> bool:
        return True

    def batch_preparer(self, ctx: PrepareContext, *, system_role: bool, resources: Resources,
                       embed_fn: EmbedFn | None = None) -> BatchPreparer:
        index = resources.get(INDEX)
        if index is None:
            raise ValueError("rag needs docs/ (or docs.jsonl) in the eval set")
        from harness.retrieval.index import retrieved_doc_ids

        evalset, embedder = ctx.evalset, ctx.embedder

        def rag_batch(items: list[EvalItem], vecs: np.ndarray | None) -> dict[str, Prepared]:
            if embedder is None:
                results = index.query_many(query_texts(evalset, items), self.top_k, vectors=vecs)
                return {i.id: Prepared(self.render(evalset, i.input, passages=passages, system_role=system_role),
                                       retrieved_doc_ids=retrieved_doc_ids(passages))
                        for i, passages in zip(items, results, strict=True)}
            out = {}
            for i, got in zip(items, embedder.retrieve(index, query_texts(evalset, items), self.top_k), strict=True):
                if got.passages is None:  # its query embedding failed: an error record, not an empty retrieval
                    out[i.id] = Prepared([], error=got.error, error_kind=got.error_kind, retrieval_cost=got.cost)
                    continue
                out[i.id] = Prepared(self.render(evalset, i.input, passages=got.passages, system_role=system_role),
                                     retrieved_doc_ids=retrieved_doc_ids(got.passages), retrieval_cost=got.cost)
            return out

        return rag_batch


def build_index(ctx: PrepareContext) -> Any:
    """Open the index of the eval set's docs in the configured store (a Chroma server, rag.index_dir, or the
    cache folder), embedding only what is missing; the manifest's `rag` entry says where and what it cost."""
    from harness.retrieval.index import RagIndex

    if ctx.rag.collection:
        from harness.retrieval.collection import open_for_queries

        index, entry = open_for_queries(ctx.rag, query_texts(ctx.evalset, ctx.evalset.test[:1]), ctx.embedder)
        ctx.manifest["rag"] = {**entry, "embedding": ctx.embedder.describe() if ctx.embedder else None}
        return index
    server = ctx.rag.server
    index_dir = None
    if not server:
        index_dir = ctx.rag.index_dir or (ctx.cache_dir / "chroma" if ctx.cache_dir else None)
        if index_dir is None:
            raise ValueError("rag: no place for the index; set rag.index_dir or rag.server")
    t0 = time.perf_counter()
    index = RagIndex.build(ctx.evalset.docs, index_dir, ctx.evalset.name, max_chars=ctx.rag.chunk_chars,
                           overlap=ctx.rag.chunk_overlap, show_progress=ctx.progress, server=server,
                           embedder=ctx.embedder)
    where = {"server": server} if server else {"index_dir": str(index_dir)}
    ctx.manifest["rag"] = {**where, "collection": index.collection_name, "chunks": index.n_chunks,
                           "reused": index.reused, "embedded": index.embedded,
                           "build_s": round(time.perf_counter() - t0, 3), "docs": len(ctx.evalset.docs),
                           **({"embedding": ctx.embedder.describe()} if ctx.embedder else {})}
    return index
