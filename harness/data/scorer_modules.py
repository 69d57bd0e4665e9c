"""The Python modules a task.yaml's `scorer: python` entries name (`function: "myscorers:short"`): where such a
module lives next to task.yaml, and which of them an eval set carries. They define the eval set as much as a
rubric does, so its content hash covers them (harness.data.evalset.content_hash); harness.scoring.python_scorer
loads them. Kept here, below scoring, so reading an eval set never imports the scorers."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def module_file(folder: Path, module: str) -> Path | None:
    """The file a module name means next to task.yaml, if there is one."""
    rel = Path(*module.split("."))
    for cand in (folder / rel.with_suffix(".py"), folder / rel / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def scorer_module_files(folder: Path, data: Any) -> list[tuple[str, Path]]:
    """Files a task.yaml's scorers use that its plain file-name values do not name: the modules of
    `scorer: python` entries that live next to task.yaml (`function: "myscorers:short"` -> myscorers.py)."""
    out: list[tuple[str, Path]] = []
    entries = data.get("scoring") if isinstance(data, dict) else None
    for raw in entries if isinstance(entries, list) else []:
        fn = raw.get("function") if isinstance(raw, dict) and raw.get("scorer") == "python" else None
        if isinstance(fn, str) and ":" in fn:
            path = module_file(folder, fn.split(":", 1)[0])
            if path is not None:
                out.append((path.relative_to(folder).as_posix(), path))
    return sorted(set(out))
