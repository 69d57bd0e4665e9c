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
