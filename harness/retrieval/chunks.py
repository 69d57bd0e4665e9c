"""Documents -> chunks for the RAG index, and the content hash that decides when an index is rebuilt.

Kept apart from the Chroma code so the chunking rules (and their version) can be read and tested alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from harness.retrieval.embeddings import EMBEDDING_FUNCTION_NAME

# Bump when chunk_doc's output changes for the same input, so old indexes are not reused.
CHUNKER_VERSION = 1


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


def docs_hash(docs: Iterable[DocLike], *, max_chars: int = 800, overlap: int = 100,
              embedding: str = EMBEDDING_FUNCTION_NAME) -> str:
    """sha256 over everything that decides an index's content, the embedding model's identity included (an
    index of MiniLM vectors and one of an embeddings endpoint's never share a collection).

    Documents are taken in id order, so listing the same files in another order reuses the index.
    """
    digest = hashlib.sha256()
    header = {
        "embedding_function": embedding,
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
