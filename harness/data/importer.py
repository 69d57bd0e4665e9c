"""Build an eval set from a CSV or JSONL file with a column mapping; a label column becomes an enum.

All or nothing: every row is checked before anything is written, then the split file and task.yaml are written
to temporary files beside their places and moved in, so a bad row leaves the folder as it was.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from harness.data.leakage import repeated_texts
from harness.data.text import normalise
from harness.errors import HarnessError, not_utf8_message, read_utf8, utf8_only

SHOWN = 5  # bad rows named in the error; the rest are counted


@dataclass
class _Table:
    columns: list[str]
    # (its position among the rows, which names it when there is no id column; its number as a person finds it
    # in the file; its cells)
    rows: list[tuple[int, int, dict[str, Any]]]
    unit: str  # "row" (CSV, the header is row 1) | "line" (JSONL)


def _read(fmt: str, path: Path) -> _Table:
    if not path.exists():
        raise HarnessError(f"{path}: file not found")
    if fmt == "csv":
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        except UnicodeDecodeError:
            raise HarnessError(not_utf8_message(path)) from None
        except (ValueError, pd.errors.ParserError) as exc:
            raise HarnessError(f"{path}: cannot read as csv: {str(exc).splitlines()[0]}") from None
        return _Table([str(c) for c in df.columns],
                      [(n, n + 2, row) for n, row in enumerate(df.to_dict("records"))], "row")
    rows: list[tuple[int, int, dict[str, Any]]] = []
    columns: dict[str, None] = {}
    with utf8_only(path), path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise HarnessError(f"{path}:{lineno}: cannot read as jsonl: {exc.msg} at column {exc.colno}") from None
            if not isinstance(row, dict):
                raise HarnessError(f"{path}:{lineno}: expected one JSON object per line")
            columns.update(dict.fromkeys(map(str, row)))
            rows.append((len(rows), lineno, row))
    return _Table(list(columns), rows, "line")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


def _safe_field(name: str) -> str:
    return re.sub(r"\W+", "_", name).strip("_") or "label"


def _items(table: _Table, path: Path, split: str, input_cols: list[str], label_col: str, id_col: str | None,
           field: str) -> list[tuple[int, dict[str, Any]]]:
    """(row number, eval-set item) for every row; every bad row is found before one error names them."""
    problems: list[str] = []
    seen_ids: dict[str, int] = {}
    items: list[tuple[int, dict[str, Any]]] = []
    for pos, number, get in table.rows:
        where = f"{table.unit} {number}"
        item_id = str(get.get(id_col)) if id_col else f"{split}-{pos + 1:05d}"
        if id_col and _blank(get.get(id_col)):
            problems.append(f"{where}: empty {id_col}")
        elif item_id in seen_ids:
            problems.append(f"{where}: duplicate id {item_id!r} in column {id_col} (first on "
                            f"{table.unit} {seen_ids[item_id]})")
        seen_ids.setdefault(item_id, number)
        if all(_blank(get.get(c)) for c in input_cols):
            problems.append(f"{where}: empty input text ({', '.join(input_cols)})")
        if _blank(get.get(label_col)):
            problems.append(f"{where}: empty {label_col}")
        if not problems:
            text = {c: "" if _blank(get.get(c)) else str(get[c]) for c in input_cols}
            items.append((number, {"id": item_id, "input": text, "expected": {field: str(get[label_col])}}))
    if problems:
        more = f" (+{len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
        raise HarnessError(f"{path}: {'; '.join(problems[:SHOWN])}{more}; nothing was written: fix the rows or "
                           "leave them out of the file")
    return items


def _text_of(item: dict[str, Any]) -> str:
    return normalise(" ".join(str(v) for v in (item.get("input") or {}).values()))


def _other_split(out: Path, split: str) -> dict[str, str]:
    """Item id -> normalised text of the eval set's other split, if it is there (unreadable lines are skipped:
    `harness validate` reports them)."""
    other = out / ("train.jsonl" if split == "test" else "test.jsonl")
    texts: dict[str, str] = {}
    if other.exists():
        for line in other.read_text("utf-8", errors="replace").splitlines():
            try:
                raw = json.loads(line)
                texts[str(raw["id"])] = _text_of(raw)
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                continue
    return texts


def _examples(pairs: list[str]) -> str:
    return ", ".join(pairs[:20]) + (f", ... (+{len(pairs) - 20} more)" if len(pairs) > 20 else "")


def duplicate_warnings(items: list[tuple[int, dict[str, Any]]], out: Path, split: str, unit: str) -> list[str]:
    """Rows whose text repeats another row's, or an item of the other split, after `normalise` (case,
    punctuation and spacing do not count): each counts twice in the scores, or leaks the answer."""
    warnings = []
    groups = repeated_texts((number, _text_of(item)) for number, item in items)
    if groups:
        shown = [" = ".join(str(n) for n in group) for group in groups]
        warnings.append(f"{len(groups)} text(s) appear more than once in this file ({unit}s "
                        f"{_examples(shown)}): each copy is scored; remove the repeats unless they are meant")
    other = _other_split(out, split)
    by_text: dict[str, str] = {}
    for item_id, text in other.items():
        by_text.setdefault(text, item_id)
    both = [f"{unit} {number} ~ {by_text[_text_of(item)]}" for number, item in items if _text_of(item) in by_text]
    if both:
        name = "train.jsonl" if split == "test" else "test.jsonl"
        warnings.append(f"{len(both)} row(s) repeat an item of {name} ({_examples(both)}): a test item seen in "
                        "training inflates the scores; `harness validate` lists them as leakage")
    return warnings


def _task(out: Path, path: Path, input_cols: list[str], field: str, labels: set[str],
          instructions: str | None) -> tuple[dict[str, Any], int]:
    """task.yaml with the labels added to the answer field's enum, and the enum's size."""
    task_path = out / "task.yaml"
    if task_path.exists():
        try:
            task = yaml.safe_load(read_utf8(task_path)) or {}
        except yaml.YAMLError as exc:
            raise HarnessError(f"{task_path}: cannot read it to add the labels ({str(exc).splitlines()[0]}); "
                               "fix it or remove it") from None
    else:
        task = {
            "description": f"Imported from {path.name}",
            "instructions": instructions or f"Read the input and answer with its {field.replace('_', ' ')}.",
            "input_template": "\n".join("{" + c + "}" for c in input_cols),
        }
    if not isinstance(task, dict):
        raise HarnessError(f"{task_path}: expected a mapping (instructions, input_template, output_schema); fix "
                           "it or remove it")
    schema = task.get("output_schema") or {"type": "object", "properties": {}, "required": [field],
                                           "additionalProperties": False}
    if not isinstance(schema, dict):
        raise HarnessError(f"{task_path}: output_schema is the file {schema}: add the labels "
                           f"{', '.join(sorted(labels))} to its {field} enum there, or import into a new folder")
    prop = schema.setdefault("properties", {}).setdefault(field, {"type": "string", "enum": []})
    prop["enum"] = sorted(set(prop.get("enum", [])) | labels)
    task["output_schema"] = schema
    return task, len(prop["enum"])


def _write_all(files: dict[Path, str]) -> None:
    """Each file to a temporary file in its folder first, then all moved into place."""
    staged: list[tuple[str, Path]] = []
    try:
        for target, text in files.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            staged.append((tmp, target))
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)


def import_table(
    fmt: str,
    path: Path,
    out: Path,
    *,
    input_cols: list[str],
    label_col: str,
    split: str = "test",
    id_col: str | None = None,
    label_field: str | None = None,
    instructions: str | None = None,
    sample: int | None = None,
    seed: int = 0,
    force: bool = False,
    warn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Write `out/<split>.jsonl` and add the labels to `out/task.yaml`; `warn` gets each warning (repeated
    texts), by default printed to stderr."""
    table = _read(fmt, path)
    missing = [c for c in [*input_cols, label_col, *([id_col] if id_col else [])] if c not in table.columns]
    if missing:
        raise HarnessError(f"{path}: no column(s) {', '.join(missing)} (columns: {', '.join(table.columns)})")
    if sample is not None and sample < len(table.rows):
        keep = sorted(random.Random(seed).sample(range(len(table.rows)), sample))
        table.rows = [table.rows[p] for p in keep]
    split_path = out / f"{split}.jsonl"
    if split_path.exists() and not force:
        raise HarnessError(f"{split_path}: already exists; pass --force to overwrite it")
    field = _safe_field(label_field or label_col)
    items = _items(table, path, split, input_cols, label_col, id_col, field)
    labels = {item["expected"][field] for _, item in items}
    task, enum_size = _task(out, path, input_cols, field, labels, instructions)
    warnings = duplicate_warnings(items, out, split, table.unit)
    _write_all({
        split_path: "".join(json.dumps(item, ensure_ascii=False) + "\n" for _, item in items),
        out / "task.yaml": yaml.safe_dump(task, sort_keys=False, allow_unicode=True, width=100),
    })
    for line in warnings:
        (warn or (lambda w: print(f"warning: {w}", file=sys.stderr)))(line)
    return {"split": str(split_path), "items": len(items), "labels": len(labels), "enum_size": enum_size,
            "warnings": warnings}
