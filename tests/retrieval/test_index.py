"""Tests for harness.retrieval.index: chunking, the build-or-reuse index on a real Chroma folder, metrics."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings

from harness.retrieval import embeddings
from harness.retrieval.index import (
    Doc,
    Passage,
    RagIndex,
    chunk_doc,
    collection_name,
    docs_hash,
    retrieved_doc_ids,
)
from harness.retrieval.metrics import nearest_neighbours, recall_at_k, reciprocal_rank

DOCS = [
    Doc(
        "card-delivery",
        "New cards are posted within 2 working days and usually arrive within 5 to 7 working "
        "days. You can track the delivery of your card in the app.",
    ),
    Doc(
        "exchange-rates",
        "We convert currencies at the interbank exchange rate, updated every minute. On weekends "
        "a 0.5% markup applies to currency exchange.",
    ),
    Doc(
        "pin-change",
        "You can change your PIN at any ATM that supports PIN management, or view it in the app "
        "under Card settings.",
    ),
    Doc(
        "top-up-failed",
        "A top-up can fail if your bank declines the payment or the card has expired. Failed "
        "top-ups are never charged.",
    ),
    Doc(
        "refunds",
        "Refunds from merchants take up to 10 working days to appear in your account after the "
        "merchant processes them.",
    ),
    Doc(
        "account-closure",
        "To close your account, withdraw your balance and contact support from the app; closure "
        "takes one business day.",
    ),
]


class CountingEmbed:
    """Wraps the real ``embed`` and records every call, to prove when embedding does not happen."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self._real = embeddings.embed

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return self._real(texts)


@pytest.fixture()
def counting_embed(monkeypatch: pytest.MonkeyPatch) -> CountingEmbed:
    counter = CountingEmbed()
    monkeypatch.setattr(embeddings, "embed", counter)
    return counter


def test_query_ranks_the_relevant_doc_first(tmp_path: Path) -> None:
    index = RagIndex.build(DOCS, tmp_path / "chroma", "unit-test", show_progress=False)
    assert not index.reused
    assert index.n_chunks == len(DOCS)  # every doc is shorter than one chunk
    cases = {
        "when will my new card arrive?": "card-delivery",
        "what rate do you use to convert euros to dollars": "exchange-rates",
        "I forgot my PIN, how do I change it": "pin-change",
        "my top up was declined": "top-up-failed",
        "how long until a merchant refund shows up": "refunds",
        "I want to close my account": "account-closure",
    }
    for question, expected in cases.items():
        passages = index.query(question, k=3)
        assert len(passages) == 3
        assert passages[0].doc_id == expected, (question, passages)
        scores = [p.score for p in passages]
        assert scores == sorted(scores, reverse=True)
        assert all(-1.0 <= s <= 1.0 + 1e-6 for s in scores)
        assert passages[0].text == next(d.text for d in DOCS if d.id == expected)
        assert passages[0].chunk_id == f"{expected}#0"
        # score is the cosine similarity of the two embeddings
        q_vec, d_vec = embeddings.embed([question, passages[0].text])
        assert passages[0].score == pytest.approx(float(q_vec @ d_vec), abs=1e-4)

    many = index.query_many(list(cases), k=2)
    assert [[p.chunk_id for p in ps] for ps in many] == [
        [p.chunk_id for p in index.query(q, k=2)] for q in cases
    ]
    assert len(index.query("anything", k=50)) == len(DOCS)  # k beyond the index size
    assert index.query_many([], k=3) == []
    with pytest.raises(ValueError):
        index.query("x", k=0)


def test_second_build_reuses_without_embedding(tmp_path: Path, counting_embed: CountingEmbed) -> None:
    first = RagIndex.build(DOCS, tmp_path, "kb", show_progress=False)
    assert not first.reused
    assert sum(counting_embed.calls) == len(DOCS)  # every chunk embedded once while building

    counting_embed.calls.clear()
    second = RagIndex.build(list(reversed(DOCS)), tmp_path, "kb", show_progress=False)
    assert second.reused
    assert second.n_chunks == first.n_chunks
    assert second.collection_name == first.collection_name
    assert counting_embed.calls == []  # nothing re-embedded

    # Queries are embedded in one batch through the same function.
    results = second.query_many(["card delivery", "exchange rate", "refund"], k=1)
    assert counting_embed.calls == [3]
    assert [r[0].doc_id for r in results] == ["card-delivery", "exchange-rates", "refunds"]


def test_changed_doc_rebuilds_and_drops_the_stale_collection(
    tmp_path: Path, counting_embed: CountingEmbed
) -> None:
    first = RagIndex.build(DOCS, tmp_path, "kb", show_progress=False)
    changed = [*DOCS[:-1], Doc("account-closure", "Accounts can be frozen by calling support.")]
    counting_embed.calls.clear()
    second = RagIndex.build(changed, tmp_path, "kb", show_progress=False)
    assert not second.reused
    assert sum(counting_embed.calls) == len(DOCS)
    assert second.docs_hash != first.docs_hash
    assert second.collection_name != first.collection_name
    assert second.query("freeze my account", k=1)[0].text.startswith("Accounts can be frozen")

    client = chromadb.PersistentClient(path=str(tmp_path), settings=Settings(anonymized_telemetry=False))
    assert [c.name for c in client.list_collections()] == [second.collection_name]

    # Other chunking settings are another index too.
    third = RagIndex.build(changed, tmp_path, "kb", max_chars=200, overlap=20, show_progress=False)
    assert not third.reused


def test_incomplete_collection_is_completed(tmp_path: Path, counting_embed: CountingEmbed) -> None:
    first = RagIndex.build(DOCS, tmp_path, "kb", show_progress=False)
    assert first.embedded == len(DOCS)
    first.collection.delete(ids=["refunds#0"])  # as if a build had been interrupted
    counting_embed.calls.clear()
    again = RagIndex.build(DOCS, tmp_path, "kb", show_progress=False)
    assert not again.reused
    assert again.collection_name == first.collection_name
    assert counting_embed.calls == [1] and again.embedded == 1  # only the missing chunk
    assert again.collection.count() == len(DOCS)
    assert again.query("merchant refund", k=1)[0].chunk_id == "refunds#0"
    assert RagIndex.build(DOCS, tmp_path, "kb", show_progress=False).reused


def test_any_doc_like_type_builds_the_same_index(tmp_path: Path) -> None:
    # The eval-set loader has its own document class; only .id and .text matter.
    @dataclass
    class OtherDoc:
        id: str
        text: str

    other = [OtherDoc(d.id, d.text) for d in DOCS]
    assert docs_hash(other) == docs_hash(DOCS)
    first = RagIndex.build(other, tmp_path, "kb", show_progress=False)
    assert not first.reused
    assert RagIndex.build(DOCS, tmp_path, "kb", show_progress=False).reused


def test_duplicate_doc_ids_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate document id 'a'"):
        RagIndex.build([Doc("a", "x"), Doc("a", "y")], tmp_path, "kb", show_progress=False)


def test_empty_knowledge_base(tmp_path: Path) -> None:
    index = RagIndex.build([Doc("blank", "   \n\n  ")], tmp_path, "kb", show_progress=False)
    assert index.n_chunks == 0
    assert index.query("anything", k=3) == []


# ------------------------------------------------------------------------------------- chunking

LONG_TEXT = "\n\n".join(
    " ".join(f"Paragraph {p} sentence {s} talks about topic {p * 10 + s}." for s in range(9))
    for p in range(5)
)


def test_chunking_splits_with_overlap_and_ids() -> None:
    chunks = chunk_doc(Doc("guide", LONG_TEXT), max_chars=300, overlap=80)
    assert len(chunks) >= 5
    assert [c.chunk_id for c in chunks] == [f"guide#{i}" for i in range(len(chunks))]
    assert all(c.doc_id == "guide" for c in chunks)
    assert all(len(c.text) <= 300 for c in chunks)
    for before, after in zip(chunks, chunks[1:], strict=False):
        # The next chunk opens with (up to 80 chars of) the end of the previous one.
        first_sentence = re.split(r"(?<=\.)\s", after.text, maxsplit=1)[0]
        assert before.text.endswith(first_sentence), (before.text, after.text)
        assert 0 < len(first_sentence) <= 80
    # Nothing is lost: every sentence of the document is in some chunk.
    for sentence in re.findall(r"Paragraph \d sentence \d talks about topic \d+\.", LONG_TEXT):
        assert any(sentence in c.text for c in chunks), sentence


def test_chunking_short_empty_and_unbreakable() -> None:
    (only,) = chunk_doc(Doc("a", "  Just one line.\n"))
    assert (only.chunk_id, only.text) == ("a#0", "Just one line.")
    assert chunk_doc(Doc("a", "  \n\n ")) == []
    blob = chunk_doc(Doc("b", "x" * 1000), max_chars=300, overlap=50)
    assert all(len(c.text) <= 300 for c in blob)
    assert "".join(c.text for c in blob).count("x") >= 1000
    no_overlap = chunk_doc(Doc("c", LONG_TEXT), max_chars=300, overlap=0)
    assert sum(len(c.text) for c in no_overlap) <= len(LONG_TEXT)


def test_chunking_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="overlap"):
        chunk_doc(Doc("a", "text"), max_chars=100, overlap=60)
    with pytest.raises(ValueError, match="max_chars"):
        chunk_doc(Doc("a", "text"), max_chars=5, overlap=0)


def test_docs_hash_covers_content_and_settings_not_order() -> None:
    base = docs_hash(DOCS)
    assert len(base) == 64
    assert docs_hash(list(reversed(DOCS))) == base
    assert docs_hash(DOCS, max_chars=400) != base
    assert docs_hash(DOCS, overlap=50) != base
    edited = [Doc(d.id, d.text + ("!" if d.id == "refunds" else "")) for d in DOCS]
    assert docs_hash(edited) != base
    renamed = [Doc(d.id + "x" if d.id == "refunds" else d.id, d.text) for d in DOCS]
    assert docs_hash(renamed) != base


@pytest.mark.parametrize("name", ["banking77", "my eval/set:v2", "", "..x..", "_-_", "é" * 3, "a" * 900])
def test_collection_name_follows_chroma_rules(name: str) -> None:
    result = collection_name(name, "0123456789abcdef" * 4)
    assert 3 <= len(result) <= 512
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]", result)
    assert ".." not in result
    assert result.endswith("-0123456789ab")


# -------------------------------------------------------------------------------------- metrics


def test_recall_at_k() -> None:
    assert recall_at_k(["a"], ["a", "b"], 1) == 1.0
    assert recall_at_k(["b"], ["a", "b"], 1) == 0.0
    assert recall_at_k(["a", "c"], ["a", "b", "c"], 2) == 0.5
    assert recall_at_k(["a", "c"], ["a", "b", "c"], 3) == 1.0
    # Duplicates (several chunks of one doc) count once, so "c" is within the first 2 unique ids.
    assert recall_at_k(["c"], ["a", "a", "c"], 2) == 1.0
    assert recall_at_k(["a", "a"], ["a"], 5) == 1.0  # expected ids are a set
    assert recall_at_k(["z"], [], 3) == 0.0
    with pytest.raises(ValueError, match="expected_ids is empty"):
        recall_at_k([], ["a"], 1)
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k(["a"], ["a"], 0)


def test_reciprocal_rank() -> None:
    assert reciprocal_rank(["a"], ["a", "b"]) == 1.0
    assert reciprocal_rank(["b"], ["a", "b"]) == 0.5
    assert reciprocal_rank(["c", "b"], ["a", "b", "c"]) == 0.5
    assert reciprocal_rank(["b"], ["a", "a", "a", "b"]) == 0.5  # ranks over unique doc ids
    assert reciprocal_rank(["z"], ["a", "b"]) == 0.0
    assert reciprocal_rank(["z"], []) == 0.0
    with pytest.raises(ValueError):
        reciprocal_rank([], ["a"])


def test_retrieved_doc_ids_keeps_first_rank() -> None:
    passages = [
        Passage("b", "b#1", "", 0.9),
        Passage("a", "a#0", "", 0.8),
        Passage("b", "b#0", "", 0.7),
        Passage("c", "c#0", "", 0.6),
    ]
    assert retrieved_doc_ids(passages) == ["b", "a", "c"]
    assert retrieved_doc_ids([]) == []


def test_nearest_neighbours() -> None:
    pool = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=np.float32)
    queries = np.array([[10, 0, 0], [0, 2, 0.1], [1, 1, 0.2]], dtype=np.float32)  # not unit norm
    top = nearest_neighbours(queries, pool, 2)
    assert top.shape == (3, 2)
    assert top[0].tolist() == [0, 3]
    assert top[1].tolist() == [1, 3]
    assert top[2].tolist()[0] == 3
    everything = nearest_neighbours(queries[:1], pool, 10)  # k beyond the pool: all, ranked
    assert everything.shape == (1, 4)
    assert everything[0, 0] == 0 and everything[0, 1] == 3
    assert sorted(everything[0].tolist()) == [0, 1, 2, 3]
    assert nearest_neighbours(np.zeros((0, 3), np.float32), pool, 2).shape == (0, 2)
    with pytest.raises(ValueError):
        nearest_neighbours(queries, pool[:, :2], 1)
    with pytest.raises(ValueError):
        nearest_neighbours(queries, pool, 0)
