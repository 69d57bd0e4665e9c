"""An eval set's content hash: which files define it, and their bytes. Two runs are comparable only if it
matches."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from harness.data.scorer_modules import scorer_module_files


def _referenced_files(folder: Path, data: Any, seen: set[Path]) -> list[tuple[str, Path]]:
    """Files a task.yaml (or a file it references, e.g. a schema's `$ref: defs.json#/x`) names by a string
    value, relative to the eval set folder, followed recursively: (the name as written, the file)."""
    found: list[tuple[str, Path]] = []
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and value and "\n" not in value and len(value) < 1024:
            name = value.split("#", 1)[0].strip()
            if not name or name.startswith(("http://", "https://", "urn:")):
                continue
            try:
                p = (folder / name).resolve()
                if p in seen or not p.is_file():
                    continue
            except (OSError, ValueError):
                continue
            seen.add(p)
            found.append((name, p))
            if p.suffix.lower() in (".json", ".yaml", ".yml"):
                try:
                    nested = yaml.safe_load(p.read_text("utf-8"))  # JSON is YAML
                except (OSError, UnicodeDecodeError, yaml.YAMLError):
                    continue
                found += [((Path(name).parent / sub).as_posix(), q)
                          for sub, q in _referenced_files(p.parent, nested, seen)]
    return found


def content_hash(folder: Path) -> str:
    """sha256 over every file that defines the eval set: task.yaml and every file it references (a schema
    under any name, and what that references), the test and train splits, and the knowledge base (docs/,
    docs.jsonl). Two runs are comparable only if it matches; a file nothing refers to (a README) is not in it."""
    h = hashlib.sha256()
    files = [folder / n for n in ("task.yaml", "test.jsonl", "train.jsonl", "docs.jsonl")]
    docs_dir = folder / "docs"
    if docs_dir.is_dir():
        files += sorted(p for p in docs_dir.rglob("*") if p.is_file())
    files += sorted(folder.glob("*.schema.json"))
    entries = [(p.relative_to(folder).as_posix(), p) for p in files if p.exists()]
    # Appended after the fixed files, so an eval set that references nothing else keeps its earlier hash.
    task = folder / "task.yaml"
    if task.exists():
        try:
            data = yaml.safe_load(task.read_text("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError):
            data = None
        seen = {p.resolve() for _, p in entries}
        entries += sorted(_referenced_files(folder, data, seen))
        # A python scorer's module (`function: "myscorers:short"` -> myscorers.py) is named by no file-name
        # value, yet defines the scores as much as a rubric does (which the line above already covers).
        for name, path in scorer_module_files(folder, data):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                entries.append((name, path))
    for name, p in entries:
        h.update(name.encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()
