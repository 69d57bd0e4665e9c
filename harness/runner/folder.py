"""The run folder on disk: results/<run-id>/ with config.json, manifest.json and records.jsonl.

Everything that reads or writes a run folder goes through here, so the format lives in one place.
"""

from __future__ import annotations

import json
import os
import shutil
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


def new_run_dir(cfg: RunConfig, out: Path | None, results_dir: Path, *, force: bool = False) -> Path:
    """The folder a new run will write (made by create_run_dir once the checks before the first call pass):
    `out`, else results/<name>-<timestamp>. An `out` that holds a run is refused unless `force`."""
    if out is not None:
        if (out / RECORDS).exists() and not force:
            raise ConfigError(f"{out}: already holds a run; use --resume {out} to continue it, --force to replace "
                              f"it, or another --out")
        if force and out.exists() and not (out.is_dir() and (is_run_folder(out) or not (out / RECORDS).exists())):
            raise ConfigError(f"{out}: not a run folder (a run folder has manifest.json with config.json or "
                              f"records.jsonl), so --force will not delete it; move it away or use another --out")
        return out
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = results_dir / f"{cfg.name}-{stamp}"
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = results_dir / f"{cfg.name}-{stamp}-{n}"
    return run_dir


def is_run_folder(path: Path) -> bool:
    """A folder a run wrote: its manifest.json with config.json or records.jsonl beside it."""
    return path.is_dir() and (path / MANIFEST).is_file() and ((path / CONFIG).is_file() or (path / RECORDS).is_file())


def create_run_dir(run_dir: Path, *, replace: bool = False) -> None:
    """Make the run folder; with `replace`, delete the run already in it first (and say which), but only a
    run folder (is_run_folder): any other folder is written into as it is, never deleted."""
    if replace and run_dir.exists():
        _replace_run(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


def _replace_run(run_dir: Path) -> None:
    if not is_run_folder(run_dir):
        return  # nothing to replace: an empty or unrelated folder is written into, as without --force
    resolved = run_dir.resolve()
    if resolved == Path.cwd().resolve() or resolved in Path.cwd().resolve().parents or resolved == Path.home():
        raise ConfigError(f"{run_dir}: is the working directory (or holds it); --force deletes the run folder it "
                          f"replaces, so give --out a folder of its own")
    try:
        old = json.loads((run_dir / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        old = {}
    old = old if isinstance(old, dict) else {}
    records = _count_lines(run_dir / RECORDS)
    shutil.rmtree(run_dir)
    print(f"--force: replaced the run in {run_dir} (run {old.get('run_id', '?')}, status {old.get('status', '?')}, "
          f"started {old.get('started_at', '?')}, {records} records)", file=sys.stderr)


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


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
