"""The run folder on disk: results/<run-id>/ with config.json, manifest.json and records.jsonl.

Everything that reads or writes a run folder goes through here, so the format lives in one place.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness
from harness.config import RunConfig
from harness.errors import ConfigError, HarnessError
from harness.records import Record

RECORDS = "records.jsonl"
MANIFEST = "manifest.json"
CONFIG = "config.json"


def git_revision() -> str | None:
    root = Path(harness.__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json(path: Path, data: Any) -> None:
    """Atomic write: a crash mid-write never leaves half a manifest."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)


def read_records(path: Path, *, repair: bool = False) -> list[Record]:
    """Every complete line; a torn last line (killed mid-write) is dropped, and cut off when repairing."""
    if not path.exists():
        return []
    records: list[Record] = []
    good_bytes = 0
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            try:
                records.append(Record.model_validate_json(raw))
            except ValueError:
                break
            good_bytes += len(raw)
    if repair and good_bytes != path.stat().st_size:
        with path.open("r+b") as fh:
            fh.truncate(good_bytes)
    return records


def new_run_dir(cfg: RunConfig, out: Path | None, results_dir: Path) -> Path:
    if out is not None:
        run_dir = out
        if (run_dir / "records.jsonl").exists():
            raise ConfigError(f"{run_dir}: already holds a run; use --resume {run_dir} to continue it, or another --out")
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = results_dir / f"{cfg.name}-{stamp}"
        n = 1
        while run_dir.exists():
            n += 1
            run_dir = results_dir / f"{cfg.name}-{stamp}-{n}"
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def load_run_config(run_dir: Path) -> RunConfig:
    path = run_dir / "config.json"
    if not path.exists():
        raise HarnessError(f"{run_dir}: not a run folder (no config.json)")
    return RunConfig.model_validate_json(path.read_text("utf-8"))




def load_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / MANIFEST
    if not path.exists():
        raise HarnessError(f"{run_dir}: not a run folder (no manifest.json)")
    try:
        return json.loads(path.read_text("utf-8"))
    except ValueError as exc:
        raise HarnessError(f"{path}: not valid JSON ({exc}); the run folder is damaged") from None


def load_run(run_dir: Path) -> tuple[dict[str, Any], list[Record]]:
    """The manifest and every complete record of a run folder."""
    manifest = load_manifest(run_dir)
    return manifest, read_records(run_dir / RECORDS)


def load_config_dict(run_dir: Path) -> dict[str, Any]:
    p = run_dir / CONFIG
    return json.loads(p.read_text("utf-8")) if p.exists() else {}
