"""One line of records.jsonl -> a Record, surviving the one kind of damage a kill can leave (a torn write
with a resumed run's record appended after it). Shared by the full reader (folder) and the compact one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.records import Record

RECORD_START = b'{"item_id"'  # every record line starts so (Record's first field)


def parse_record_line(raw: bytes) -> tuple[Record | None, bool]:
    """(record, whether the line was whole). A line that is two lines run together (a write torn by a kill,
    then a resumed run appending after it) gives back the record that follows the torn start."""
    try:
        return Record.model_validate_json(raw), True
    except ValueError:
        pass
    start = raw.rfind(RECORD_START)
    if start > 0:
        try:
            return Record.model_validate_json(raw[start:]), False
        except ValueError:
            pass
    return None, False


def record_dicts(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(byte offset, the record as a dict) for every readable line of records.jsonl, read as plain JSON (fast
    enough for 100,000 lines). A line that is not a plain record goes through parse_record_line; a last line
    without its newline counts only when it is whole. The compact reader and the view share these rules."""
    offset = 0
    with path.open("rb") as fh:
        for raw in fh:
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            data = _plain_record(raw)
            if data is None:
                rec, whole = parse_record_line(raw)
                if rec is None or not (whole or raw.endswith(b"\n")):
                    continue
                data = json.loads(rec.model_dump_json())
            yield start, data


def _plain_record(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or "item_id" not in data:
            return None
        if not raw.endswith(b"\n"):
            Record.model_validate(data)  # a last line without its newline counts only when whole
        return data
    except (ValueError, TypeError):
        return None
