"""The run folder on disk: results/<run-id>/ with config.json, manifest.json and records.jsonl.

Everything that reads or writes a run folder goes through here, so the format lives in one place.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness
from harness.config import RunConfig
from harness.errors import ConfigError, HarnessError
from harness.records import Record
from harness.runner.record_line import parse_record_line

RECORDS = "records.jsonl"
MANIFEST = "manifest.json"
CONFIG = "config.json"
# The judge's grades of the answers people scored (harness.scoring.judge.calibrate), when there are any.
CALIBRATION_FILE = "judge_human.jsonl"


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
    """Every record line, in file order (a retried key appears more than once; see `latest_records`).

    A garbled or torn line in the middle loses that line only, with a warning naming file:line (on
    --resume its item is asked again). A torn last line (no newline: killed mid-write) is dropped, and
    with `repair` cut off, so that appending starts on a fresh line.
    """
    if not path.exists():
        return []
    records: list[Record] = []
    good_bytes = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                rec, whole = parse_record_line(raw)
                if rec is not None and whole:  # complete but for its newline: keep it
                    records.append(rec)
                    if repair:
                        with path.open("ab") as out:
                            out.write(b"\n")
                        good_bytes += len(raw) + 1
                break
            good_bytes += len(raw)
            if not raw.strip():
                continue
            rec, whole = parse_record_line(raw)
            if rec is not None:
                records.append(rec)
            if not whole:
                kept = f"; the record after it ({rec.variant}/{rec.item_id}) is kept" if rec is not None else ""
                print(f"warning: {path}:{lineno}: not a valid record (torn or garbled line), skipped{kept}; "
                      f"`harness run --resume {path.parent}` asks a lost item again", file=sys.stderr)
    if repair and good_bytes < path.stat().st_size:
        with path.open("r+b") as fh:
            fh.truncate(good_bytes)
    return records


def latest_records(records: list[Record]) -> list[Record]:
    """One record per (variant, item, repeat): the last one written. records.jsonl is append-only, so an
    item asked again (`--retry-errors`) has its new record after the old one, and the new one counts."""
    latest: dict[tuple[str, str, int], Record] = {}
    for rec in records:
        latest[rec.key] = rec
    return list(latest.values())


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


def load_run(run_dir: Path, *, compact: bool = False) -> tuple[dict[str, Any], list[Record]]:
    """The manifest and the current record of every (variant, item, repeat) of a run folder: the last one
    written, so a retried item counts once, with its new answer. `compact` gives the small read-only records
    the tables and reports need (harness.runner.compact), read line by line: a 100,000-record run fits."""
    manifest = load_manifest(run_dir)
    if compact:
        from harness.runner.compact import read_latest_compact

        return manifest, read_latest_compact(run_dir / RECORDS)  # type: ignore[return-value]
    return manifest, latest_records(read_records(run_dir / RECORDS))


def load_config_dict(run_dir: Path) -> dict[str, Any]:
    p = run_dir / CONFIG
    return json.loads(p.read_text("utf-8")) if p.exists() else {}
