"""The run folder on disk: results/<run-id>/ with config.json, manifest.json and records.jsonl, and the files
built from them (summary.csv, summary.md, report.md, report.html).

Everything that reads or writes a run folder goes through `RunFolder` (or the record readers here), so the
format lives in one place: the runner makes one (`RunFolder.create`), and the tables, the report, the gate,
merge, the viewer and the Python API open one (`RunFolder.open`) and read its typed manifest and records.

    folder = RunFolder.open(Path("results/demo-20261205-101500"))
    folder.manifest.status, folder.manifest.variant("baseline").model_id
    folder.latest_records()        # full Records, the last one written per (variant, item, repeat)
    folder.compact_records()       # the small read-only records the tables use (100,000 fit)

A run killed at any moment stays readable: its manifest is the last whole one written (status `running`,
from the start of the run), and a torn last record line is skipped (see `read_records`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

import harness
from harness.config import RunConfig
from harness.errors import ConfigError, HarnessError
from harness.records import Record
from harness.rundir.compact import CompactRecord, read_latest_compact
from harness.rundir.manifest import Manifest
from harness.rundir.record_line import parse_record_line

RECORDS = "records.jsonl"
MANIFEST = "manifest.json"
CONFIG = "config.json"
# The judge's grades of the answers people scored (harness.scoring.judge.calibrate), when there are any.
CALIBRATION_FILE = "judge_human.jsonl"
# Built from the three files above at any time (harness.report.write).
SUMMARY_CSV, SUMMARY_MD, REPORT_MD, REPORT_HTML = "summary.csv", "summary.md", "report.md", "report.html"


class RunFolder:
    """One run folder: its files' paths, its typed manifest, its config and its records."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    @classmethod
    def create(cls, path: Path, config: dict[str, Any], manifest: Manifest, *, replace: bool = False) -> RunFolder:
        """Make the folder (with `replace`, deleting the run folder already there: create_run_dir) and write
        config.json (the config as saved: harness.redact.snapshot) and the manifest the run starts with."""
        create_run_dir(path, replace=replace)
        folder = cls(path)
        write_json(folder.config_path, config)
        folder.write_manifest(manifest)
        return folder

    @classmethod
    def open(cls, path: Path | str) -> RunFolder:
        """A run folder written earlier (or still being written); its manifest is read and checked here."""
        folder = cls(path)
        if not folder.path.is_dir():
            raise HarnessError(f"{folder.path}: run folder not found")
        folder.manifest  # noqa: B018 -- read now: a folder that is not a run says so here, in one line
        return folder

    # -- the files -----------------------------------------------------------------------------------------
    @property
    def records_path(self) -> Path:
        return self.path / RECORDS

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def calibration_path(self) -> Path:
        return self.path / CALIBRATION_FILE

    @property
    def summary_csv(self) -> Path:
        return self.path / SUMMARY_CSV

    @property
    def summary_md(self) -> Path:
        return self.path / SUMMARY_MD

    @property
    def report_md(self) -> Path:
        return self.path / REPORT_MD

    @property
    def report_html(self) -> Path:
        return self.path / REPORT_HTML

    # -- what is in them -----------------------------------------------------------------------------------
    @cached_property
    def manifest(self) -> Manifest:
        return read_manifest(self.manifest_path)

    def write_manifest(self, manifest: Manifest) -> None:
        """Replace manifest.json (atomically) with `manifest`, which this folder's `manifest` then is."""
        write_json(self.manifest_path, manifest.to_json())
        self.__dict__["manifest"] = manifest

    def config(self) -> RunConfig:
        return load_run_config(self.path)

    def config_dict(self) -> dict[str, Any]:
        """config.json as saved ({} when the folder has none)."""
        return json.loads(self.config_path.read_text("utf-8")) if self.config_path.exists() else {}

    def has_records(self) -> bool:
        return self.records_path.exists() and self.records_path.stat().st_size > 0

    def records(self, *, repair: bool = False) -> list[Record]:
        """Every record line, in file order (see `read_records`)."""
        return read_records(self.records_path, repair=repair)

    def latest_records(self) -> list[Record]:
        """The current record of every (variant, item, repeat): the last one written, so a retried item counts
        once, with its new answer."""
        return latest_records(read_records(self.records_path))

    def compact_records(self) -> list[CompactRecord]:
        """`latest_records` as the small read-only records the tables and reports need
        (harness.rundir.compact), read line by line: a 100,000-record run fits."""
        return read_latest_compact(self.records_path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"


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
        old = read_manifest(run_dir / MANIFEST)
    except (OSError, HarnessError):
        old = Manifest()
    records = _count_lines(run_dir / RECORDS)
    shutil.rmtree(run_dir)
    print(f"--force: replaced the run in {run_dir} (run {old.run_id or '?'}, status {old.status or '?'}, "
          f"started {old.started_at or '?'}, {records} records)", file=sys.stderr)


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def load_run_config(run_dir: Path) -> RunConfig:
    path = run_dir / CONFIG
    if not path.exists():
        raise HarnessError(f"{run_dir}: not a run folder (no config.json)")
    return RunConfig.model_validate_json(path.read_text("utf-8"))


def read_manifest(path: Path) -> Manifest:
    """manifest.json as the typed Manifest (an older one migrated as it is read); one line naming the file
    and the field when it cannot be read."""
    if not path.exists():
        raise HarnessError(f"{path.parent}: not a run folder (no manifest.json)")
    try:
        data = json.loads(path.read_text("utf-8"))
    except ValueError as exc:
        raise HarnessError(f"{path}: not valid JSON ({exc}); the run folder is damaged") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: not a manifest (a JSON object); the run folder is damaged")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:  # the version check (harness.rundir.manifest.migrate): its message says what to do
            raise HarnessError(f"{path}: {msg}") from None
        where = ".".join(str(p) for p in err["loc"])
        raise HarnessError(f"{path}: {where}: {msg}; the run folder is damaged or was written by another "
                           f"version of the harness") from None
