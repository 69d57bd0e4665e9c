"""One line of records.jsonl -> a Record, surviving the one kind of damage a kill can leave (a torn write
with a resumed run's record appended after it). Shared by the full reader (folder) and the compact one."""

from __future__ import annotations

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
