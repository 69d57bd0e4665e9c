"""Build an eval set from a CSV or JSONL file with a column mapping; a label column becomes an enum."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from harness.errors import HarnessError, not_utf8_message, read_utf8


def _read(kind: str, path: Path) -> pd.DataFrame:
    if not path.exists():
        raise HarnessError(f"{path}: file not found")
    try:
        if kind == "csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        return pd.read_json(path, lines=True, dtype=False)
    except UnicodeDecodeError:
        raise HarnessError(not_utf8_message(path)) from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise HarnessError(f"{path}: cannot read as {kind}: {str(exc).splitlines()[0]}") from None


def _safe_field(name: str) -> str:
    return re.sub(r"\W+", "_", name).strip("_") or "label"


def import_table(
    kind: str,
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
) -> dict[str, Any]:
    df = _read(kind, path)
    missing = [c for c in [*input_cols, label_col, *([id_col] if id_col else [])] if c not in df.columns]
    if missing:
        raise HarnessError(f"{path}: no column(s) {', '.join(missing)} (columns: {', '.join(map(str, df.columns))})")
    rows = list(df.itertuples(index=False))
    positions = list(range(len(rows)))
    if sample is not None and sample < len(rows):
        positions = sorted(random.Random(seed).sample(positions, sample))
    field = _safe_field(label_field or label_col)
    out.mkdir(parents=True, exist_ok=True)
    split_path = out / f"{split}.jsonl"
    if split_path.exists() and not force:
        raise HarnessError(f"{split_path}: already exists; pass --force to overwrite it")
    cols = list(df.columns)
    labels: set[str] = set()
    seen_ids: set[str] = set()
    with split_path.open("w", encoding="utf-8") as fh:
        for pos in positions:
            row = rows[pos]
            get = dict(zip(cols, row, strict=True))
            item_id = str(get[id_col]) if id_col else f"{split}-{pos + 1:05d}"
            if item_id in seen_ids:
                raise HarnessError(f"{path}: row {pos + 2}: duplicate id {item_id!r} in column {id_col}")
            seen_ids.add(item_id)
            label = get[label_col]
            if label is None or str(label) == "":
                raise HarnessError(f"{path}: row {pos + 2}: empty {label_col}")
            label = str(label)
            labels.add(label)
            item = {"id": item_id, "input": {c: str(get[c]) for c in input_cols}, "expected": {field: label}}
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    task_path = out / "task.yaml"
    if task_path.exists():
        task = yaml.safe_load(read_utf8(task_path)) or {}
    else:
        task = {
            "description": f"Imported from {path.name}",
            "instructions": instructions or f"Read the input and answer with its {field.replace('_', ' ')}.",
            "input_template": "\n".join("{" + c + "}" for c in input_cols),
        }
    schema = task.get("output_schema") or {"type": "object", "properties": {}, "required": [field],
                                           "additionalProperties": False}
    prop = schema.setdefault("properties", {}).setdefault(field, {"type": "string", "enum": []})
    prop["enum"] = sorted(set(prop.get("enum", [])) | labels)
    task["output_schema"] = schema
    task_path.write_text(yaml.safe_dump(task, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8")
    return {"split": str(split_path), "items": len(positions), "labels": len(labels), "enum_size": len(prop["enum"])}
