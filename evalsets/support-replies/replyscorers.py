"""Scorers of the support-replies eval set (task.yaml `scoring:`, `scorer: python`).

A python scorer is `f(answer, expected, item)`: `answer` is the model's reply (free text), `expected` the
reference reply, `item` the eval item (`.id`, `.input`, `.expected`, `.metadata`). It returns a bool, a number
in 0..1, or (number, explanation); None means the item cannot be scored (unknown, not 0).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# Typographic variants a model may write for the same fact.
_FOLD = str.maketrans({"\u2019": "'", "\u2018": "'", "\u2013": "-", "\u2011": "-", "\u00a0": " ", "\u202f": " "})


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_FOLD).casefold()


def _pattern(fact: str) -> re.Pattern[str]:
    """The fact as a case-insensitive pattern: any run of whitespace matches any run, and a fact that starts or
    ends with a letter or digit must not run on into one ("€30" is not found in "€300", "121" not in "1210")."""
    norm = _norm(fact).strip()
    body = r"\s+".join(re.escape(p) for p in norm.split())
    head = r"(?<!\w)" if re.match(r"\w", norm) else ""
    tail = r"(?!\w)" if re.search(r"\w\Z", norm) else ""
    return re.compile(head + body + tail)


def facts(answer: Any, expected: Any, item: Any) -> tuple[float, str] | None:
    """The share of the item's `metadata.facts` (the exact strings the reply needs from the knowledge base, such
    as "14 days" or "0800 555 0142") that the reply contains, ignoring case, whitespace runs and typographic
    quotes. None (unknown) for an item without facts."""
    wanted = list((getattr(item, "metadata", None) or {}).get("facts") or [])
    if not wanted:
        return None
    text = _norm(answer if isinstance(answer, str) else "")
    missing = [f for f in wanted if not _pattern(f).search(text)]
    found = len(wanted) - len(missing)
    why = f"{found} of {len(wanted)} facts" + (f"; missing: {', '.join(repr(f) for f in missing)}" if missing else "")
    return found / len(wanted), why
