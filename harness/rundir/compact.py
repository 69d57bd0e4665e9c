"""Records as the tables and reports read them: one small object per record, built line by line.

A Record parsed from records.jsonl is about 9 KB in memory (5 KB without its request): 100,000 of them would
not fit the budget of a large run. The summary, the report and the regression gate read only the outcome of
each record, so this reader keeps exactly that, in a `__slots__` object with the Record's attribute names, and
shares what repeats from record to record (the same scores, answer, expected label, usage and names are one
object each). The request is reduced to the size of its prompt (`prompt_chars`), which is all the reports use
of it (tokens per character, for training-cost estimates). Lines in the layout before the typed score are
upgraded as the full reader does (harness.records.upgrade_layout), so both readers see the same fields.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.records import Record, Retrieval, Score, ScoreError, Usage, unknown_if_nan, upgrade_layout
from harness.rundir.record_line import record_dicts

SHARE_TEXT_UP_TO = 512  # answers this short are shared when they repeat (classification labels); longer ones not


# Every field of Record but the request, plus the prompt's size: the reports read the same attribute names.
_FIELDS = tuple(name for name in Record.model_fields if name != "request")


def _default(name: str) -> Any:
    info = Record.model_fields[name]
    return info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]


class CompactRecord:
    """The outcome of one record: Record's attributes minus the request (see `prompt_chars`)."""

    __slots__ = (*_FIELDS, "prompt_chars")

    def __init__(self, **values: Any):
        for name in _FIELDS:
            setattr(self, name, values[name] if name in values else _default(name))
        self.prompt_chars = values.get("prompt_chars")

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.variant, self.item_id, self.repeat)

    @property
    def request(self) -> dict[str, Any]:
        """What is kept of the request: its prompt size."""
        return {"prompt_chars": self.prompt_chars}

    def __repr__(self) -> str:
        return f"CompactRecord({self.variant!r}, {self.item_id!r}, repeat={self.repeat})"


class _Sharer:
    """One object per distinct value, for the values that repeat across records."""

    def __init__(self) -> None:
        self._json: dict[str, Any] = {}
        self._usage: dict[tuple[int, ...], Usage] = {}
        self._lists: dict[tuple[str, ...], list[str]] = {}
        self._text: dict[str, str] = {}
        self._typed: dict[tuple[str, str], Any] = {}
        self._none: dict[str, Any] = {}  # the record has none (no named scorers, no failures): one for all
        self._retrieval: dict[tuple[Any, Any], Retrieval] = {}

    def value(self, v: Any) -> Any:
        if not isinstance(v, dict | list):
            return v
        key = json.dumps(v, sort_keys=True, separators=(",", ":"))
        return self._json.setdefault(key, v)

    def usage(self, u: dict[str, Any] | None) -> Usage | None:
        if u is None:
            return None
        # every Usage field, so nothing the summary reads (reasoning tokens included) is lost
        key = tuple(u.get(name) or 0 for name in Usage.model_fields)
        found = self._usage.get(key)
        if found is None:
            found = self._usage[key] = Usage(**dict(zip(Usage.model_fields, key, strict=True)))
        return found

    def ids(self, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        return self._lists.setdefault(tuple(v), v)

    def scores(self, name: str, v: dict[str, Any] | None) -> dict[str, Any]:
        """A record's named Scores (or ScoreErrors), one mapping per distinct value."""
        if not v:
            return self._none
        key = (name, json.dumps(v, sort_keys=True, separators=(",", ":")))
        found = self._typed.get(key)
        if found is None:
            cls = _SCORE_MAPS[name]
            found = self._typed[key] = {k: cls(**x) for k, x in v.items()}
        return found

    def retrieval(self, v: dict[str, Any] | None) -> Retrieval | None:
        if v is None:
            return None
        key = (v.get("recall_at_k"), v.get("mrr"))
        found = self._retrieval.get(key)
        if found is None:
            found = self._retrieval[key] = Retrieval(**v)
        return found

    def text(self, v: str | None) -> str | None:
        if v is None or len(v) > SHARE_TEXT_UP_TO:
            return v
        return self._text.setdefault(v, v)


def prompt_chars(request: dict[str, Any] | None) -> int | None:
    if not request:
        return None
    if "prompt_chars" in request:
        return request["prompt_chars"]
    msgs = request.get("messages") or []
    return sum(len(str(m.get("content") or "")) for m in msgs) if msgs else None


_NAMES = ("variant", "model", "model_id", "finish_reason", "error_kind")
_IDS = ("retrieved_doc_ids", "shot_ids")
_SCORE_MAPS: dict[str, type[Score] | type[ScoreError]] = {"scores": Score, "score_errors": ScoreError}


def compact(data: dict[str, Any], share: _Sharer) -> CompactRecord:
    data = upgrade_layout(data)
    values: dict[str, Any] = {}
    for name in _FIELDS:
        if name not in data:
            continue
        v = data[name]
        if name in _NAMES and isinstance(v, str):
            v = sys.intern(v)
        elif name == "usage":
            v = share.usage(v)
        elif name == "raw_text":
            v = share.text(v)
        elif name in _IDS:
            v = share.ids(v)
        elif name in _SCORE_MAPS:
            v = share.scores(name, v)
        elif name == "retrieval":
            v = share.retrieval(v)
        elif name == "primary":
            v = unknown_if_nan(v)  # a NaN in a hand-written line is unknown, as Record reads it
        elif isinstance(v, dict | list):
            v = share.value(v)
        values[name] = v
    values["cache_hit"] = bool(values.get("cache_hit"))
    values["prompt_chars"] = prompt_chars(data.get("request"))
    return CompactRecord(**values)


def iter_compact(path: Path) -> Iterator[CompactRecord]:
    """Every record line of records.jsonl, compact. Lines that are not plain JSON records (torn or garbled)
    go through the full reader's repair rules (folder.read_records) instead."""
    share = _Sharer()
    if not path.exists():
        return
    for _, data in record_dicts(path):
        try:
            yield compact(data, share)
        except (ValueError, KeyError, TypeError):
            try:  # a plain JSON line missing what the tables read: as the full reader makes it, or not at all
                rec = Record.model_validate(data)
            except ValueError:
                continue
            yield compact(json.loads(rec.model_dump_json()), share)


def read_latest_compact(path: Path) -> list[CompactRecord]:
    """One compact record per (variant, item, repeat), the last one written (see folder.latest_records)."""
    latest: dict[tuple[str, str, int], CompactRecord] = {}
    for rec in iter_compact(path):
        latest[rec.key] = rec  # a retried key keeps its first place, as in latest_records
    return list(latest.values())
