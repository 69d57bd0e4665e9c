"""The one text normaliser: whether two texts are "the same text" is decided in one place.

The leakage check (test vs train / docs) and the fine-tuning export's held-out guard must agree on it:
an item the leakage check calls identical to a test item must also be kept out of a training file.
"""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s]")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Unicode form (NFKC), case, punctuation and whitespace do not make a text a different text."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


def match_key(text: str) -> str:
    """The key two free-text *answers* are compared on (the default scorer of a free-text task): case,
    surrounding whitespace and punctuation, and runs of inner whitespace do not count; nothing else does.

    Deliberately gentler than `normalise`: inside an answer, punctuation can carry meaning ("3.5" vs "35",
    "U.S." vs "US", "don't" vs "don t"), so only what surrounds the answer is dropped. Unicode canonical
    composition (NFC) is applied because a composed and a decomposed "é" are the same text to any reader;
    compatibility folding (NFKC: "²" -> "2", "ﬁ" -> "fi") is not, since it can change what an answer says."""
    text = unicodedata.normalize("NFC", text).casefold()
    start, end = 0, len(text)
    while start < end and _edge(text[start]):
        start += 1
    while end > start and _edge(text[end - 1]):
        end -= 1
    return _SPACE.sub(" ", text[start:end])


def _edge(ch: str) -> bool:
    """Whitespace or Unicode punctuation (categories P*): what may surround an answer without changing it."""
    return ch.isspace() or unicodedata.category(ch).startswith("P")
