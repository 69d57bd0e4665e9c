"""A run folder as the viewer reads it: one small cell per record, and where its line is in records.jsonl.

A 100,000-record run does not fit in memory as full Records (their requests alone are most of the file), and
the viewer needs a request only when someone opens that item. So one pass over records.jsonl keeps, per
record, its outcome (primary score, flags, cost, latency, the answer text for search) and the byte offset of
its line; `RunData.record(cell)` reads that one line back as a full Record. Lines are read with the run
folder's own rules (harness.rundir.record_line): a torn or garbled line loses that line only, and the last
record written for a (variant, item, repeat) is the one that counts, as in `RunFolder.latest_records`. The
manifest and the files' paths come from the run folder (harness.rundir.RunFolder).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.records import Record, upgrade_layout
from harness.rundir import RunFolder
from harness.rundir.record_line import parse_record_line, record_dicts

ERROR, INVALID, ISSUE, UNKNOWN, CACHE = 1, 2, 4, 8, 16  # Cell.flags bits (the page reads the same numbers)
PASSAGES = "Reference documents:\n\n"  # how a RAG prompt starts (harness.prompts.variants.passages_block)
PASSAGES_END = "\n\n---\n\n"


@dataclass(slots=True)
class Cell:
    """The outcome of one record."""

    offset: int  # where its line starts in records.jsonl
    repeat: int
    score: float | None  # the primary score; an unanswered call counts 0 (as the gate counts it)
    flags: int
    cost: float | None
    latency: float | None
    answer: str  # the raw answer, or the error
    parsed: Any = None  # the parsed answer when it is a JSON object (for the field filters)


@dataclass
class ItemInfo:
    """What the eval set says about an item (its input, metadata), or what the request shows of it."""

    input: Any = None
    expected: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = "none"  # evalset | request | none
    position: int | None = None  # its line in the eval set's test.jsonl: the list follows the eval set's order


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if x == x and abs(x) != float("inf") else None


def primary_score(data: dict[str, Any]) -> float | None:
    """The record's primary score as the tables and the gate read it (harness.scoring.scorers.primary_value),
    from a record line in either layout (harness.records.upgrade_layout)."""
    if data.get("error") is not None:
        return 0.0
    return _num(upgrade_layout(data).get("primary"))


def _unknown(data: dict[str, Any]) -> bool:
    """Whether the primary score or any named score is unknown (or its scorer failed)."""
    named = (data.get("scores") or {}).values()
    return (_num(data.get("primary")) is None or bool(data.get("score_errors"))
            or any(not isinstance(s, dict) or _num(s.get("value")) is None for s in named))


def cell_of(data: dict[str, Any], offset: int, interned: dict[Any, Any]) -> Cell:
    data = upgrade_layout(data)  # a line of a run written before the typed score
    flags = 0
    if data.get("error") is not None:
        flags |= ERROR
    else:
        if data.get("format_valid") is False:
            flags |= INVALID
        if data.get("answer_issue"):
            flags |= ISSUE
        if _unknown(data):
            flags |= UNKNOWN
    if data.get("cache_hit"):
        flags |= CACHE
    parsed = data.get("parsed")
    if isinstance(parsed, dict):
        try:  # one object per distinct answer: labels repeat across 100,000 records
            parsed = interned.setdefault(tuple(parsed.items()), parsed)
        except TypeError:  # a value that is a list or an object: kept as it is
            pass
    else:
        parsed = None
    if data.get("error") is not None:
        answer = f"error ({data.get('error_kind')}): {data.get('error')}"
    else:
        answer = data.get("raw_text") or calls_text(data.get("tool_calls")) or ""
    return Cell(offset, int(data.get("repeat") or 0), primary_score(data), flags, _num(data.get("cost_usd")),
                _num(data.get("latency_s")), answer, parsed)


def calls_text(calls: Any) -> str:
    """Tool calls as one line each, `name(arguments)`, for an answer that is calls (tasks with `tools:`)."""
    if not isinstance(calls, list):
        return ""
    return "\n".join(f"{c.get('name')}({c.get('arguments')})" for c in calls if isinstance(c, dict))


def input_from_request(data: dict[str, Any]) -> str | None:
    """The item as the variant sent it: the last user message, passages and instructions aside."""
    msgs = (data.get("request") or {}).get("messages") or []
    users = [m for m in msgs if isinstance(m, dict) and m.get("role") == "user"]
    if not users or not isinstance(users[-1].get("content"), str):
        return None
    text = users[-1]["content"]
    if text.startswith(PASSAGES) and PASSAGES_END in text:
        text = text.rsplit(PASSAGES_END, 1)[1]
    return text


class RunData:
    """One run folder: its manifest, a cell per record, and the items' inputs."""

    def __init__(self, path: Path):
        self.folder = RunFolder.open(path)
        self.path = self.folder.path
        self.manifest = self.folder.manifest
        self.records_path = self.folder.records_path
        # (variant, item_id) -> {repeat: Cell}, in the order first written
        self.cells: dict[tuple[str, str], dict[int, Cell]] = {}
        self.items: dict[str, ItemInfo] = {}
        self.input_note = ""
        self._read()
        if not self.cells:
            raise HarnessError(f"{self.path}: the run has no records (records.jsonl is missing or empty)")
        self._read_evalset()

    @property
    def name(self) -> str:
        return self.manifest.run_id or self.path.name

    @property
    def variants(self) -> list[str]:
        present = dict.fromkeys(v for v, _ in self.cells)
        order = [v for v in self.manifest.variants if v in present]
        return order + [v for v in present if v not in order]

    def _read(self) -> None:
        if not self.records_path.exists():
            return
        interned: dict[Any, Any] = {}
        weak_input: set[str] = set()  # items whose input so far comes from a RAG or instructions-first prompt
        for offset, data in record_dicts(self.records_path):
            item_id, variant = str(data.get("item_id")), str(data.get("variant"))
            cell = cell_of(data, offset, interned)
            self.cells.setdefault((variant, item_id), {})[cell.repeat] = cell
            info = self.items.get(item_id)
            if info is None:
                info = self.items[item_id] = ItemInfo(expected=data.get("expected"))
            if info.source == "none" or item_id in weak_input:
                text = input_from_request(data)
                if text is not None:
                    info.input, info.source = text, "request"
                    msgs = (data.get("request") or {}).get("messages") or []
                    strong = bool(msgs) and msgs[0].get("role") == "system" and not data.get("retrieved_doc_ids")
                    (weak_input.discard if strong else weak_input.add)(item_id)

    def _read_evalset(self) -> None:
        """Inputs and metadata from the eval set's test.jsonl, when the run's eval set is still there."""
        ev = self.manifest.evalset
        folder = Path(ev.path or "")
        test = folder / "test.jsonl"
        if not ev.path or not test.is_file():
            self.input_note = "the eval set is not on this machine: inputs are shown as the variants sent them"
            return
        try:
            with test.open(encoding="utf-8") as fh:
                for position, line in enumerate(fh):
                    if not line.strip():
                        continue
                    row = json.loads(line)
                    info = self.items.get(str(row.get("id")))
                    if info is not None:
                        info.input, info.source, info.position = row.get("input"), "evalset", position
                        info.metadata = row.get("metadata") or {}
        except (OSError, ValueError, AttributeError) as exc:
            self.input_note = f"{test}: not readable ({exc}); inputs are shown as the variants sent them"
            return
        self.input_note = f"inputs from {test}"
        from harness.data.evalset import content_hash

        try:
            if ev.content_hash and content_hash(folder) != ev.content_hash:
                self.input_note += " (the eval set changed since this run: inputs may differ from what was asked)"
        except (OSError, ValueError, HarnessError):
            pass

    def record(self, cell: Cell) -> Record | None:
        """The full record behind a cell (its request, explanations, judge verdicts), read from its line."""
        with self.records_path.open("rb") as fh:
            fh.seek(cell.offset)
            raw = fh.readline()
        rec, _ = parse_record_line(raw)
        return rec
