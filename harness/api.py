"""The public Python API, for notebooks and CI scripts; the CLI is a thin layer over the same calls.

    import harness
    run = harness.run("configs/demo.yaml", limit=20, variants=["baseline", "rag"])
    run.summary            # one row per variant, the columns of summary.csv
    run.records            # one row per record
    harness.compare(harness.load_run("results/accepted"), run).failed
    harness.merge(*shard_dirs, out="results/full")  # one run from the folders of `run(..., shard="K/N")`
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.compare import CompareResult, compare_runs
from harness.errors import HarnessError
from harness.records import Record
from harness.report.write import write_summary
from harness.runner.folder import load_run as _read_run_folder
from harness.runner.runner import RunOptions
from harness.runner.runner import run as _run
from harness.runner.shards import merge_runs

RECORD_COLUMNS = [
    "item_id", "variant", "model", "model_id", "repeat", "raw_text", "parsed", "expected", "format_valid",
    "correct", "cost_usd", "latency_s", "cache_hit", "attempts", "finish_reason", "error", "error_kind",
    "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens",
]


@dataclass
class Run:
    """A run folder: `results/<run-id>/`. Tables are read from the folder, so a loaded run and a fresh one
    look the same."""

    path: Path
    status: str
    skipped: dict[str, str] = field(default_factory=dict)
    message: str | None = None

    @property
    def run_dir(self) -> Path:
        return self.path

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / "manifest.json").read_text("utf-8"))

    @property
    def summary(self) -> pd.DataFrame:
        """One row per variant: exactly summary.csv."""
        csv = self.path / "summary.csv"
        if not csv.exists():
            write_summary(self.path)
        return pd.read_csv(csv)

    @cached_property
    def records(self) -> pd.DataFrame:
        """One row per record (item x variant x repeat), with the scores flattened into columns."""
        _, records = _read_run_folder(self.path)
        return records_frame(records)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.status!r})"


def records_frame(records: list[Record]) -> pd.DataFrame:
    rows = []
    for r in records:
        usage = r.usage
        row: dict[str, Any] = {
            "item_id": r.item_id, "variant": r.variant, "model": r.model, "model_id": r.model_id,
            "repeat": r.repeat, "raw_text": r.raw_text, "parsed": r.parsed, "expected": r.expected,
            "format_valid": r.scores.get("format_valid"), "correct": r.scores.get("correct"),
            "cost_usd": r.cost_usd, "latency_s": r.latency_s, "cache_hit": r.cache_hit, "attempts": r.attempts,
            "finish_reason": r.finish_reason, "error": r.error, "error_kind": r.error_kind,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "cached_tokens": usage.cached_tokens if usage else None,
            "reasoning_tokens": usage.reasoning_tokens if usage else None,
        }
        for key, value in r.scores.items():
            if key not in row and not isinstance(value, dict | list):
                row[f"score_{key}"] = value
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else RECORD_COLUMNS)


_OPTION_NAMES = {f.name for f in fields(RunOptions)}


def run(config: str | Path | None = None, options: RunOptions | None = None, **kwargs: Any) -> Run:
    """Run a config (or continue one with resume=RUN_DIR) and build its tables and report.

    Keyword arguments are the CLI's options: limit, variants (a list), out, results_dir, resume, use_cache,
    refresh, allow_unpriced, max_error_rate, progress, cache_path, shard ("K/N": this machine's slice).
    """
    unknown = sorted(set(kwargs) - _OPTION_NAMES)
    if unknown:
        raise TypeError(f"harness.run(): unknown option(s) {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(_OPTION_NAMES))}")
    if options is not None and kwargs:
        raise TypeError("harness.run(): give either a RunOptions or keyword options, not both")
    opts = options or RunOptions(**{k: Path(v) if k in ("out", "results_dir", "resume", "cache_path")
                                    and v is not None else v for k, v in kwargs.items()})
    result = _run(config, opts)
    write_summary(result.run_dir)
    return Run(result.run_dir, result.status, result.skipped, result.message)


def merge(*run_dirs: str | Path, out: str | Path) -> Run:
    """One run folder at `out` from the folders of every shard of a run (`run(..., shard="K/N")` on N
    machines), with its tables and report built on the merged records. Raises HarnessError (one line) on
    mismatched configs or eval sets, a duplicate or missing shard, or a shard that did not finish."""
    if len(run_dirs) == 1 and isinstance(run_dirs[0], list | tuple):
        run_dirs = tuple(run_dirs[0])
    result = merge_runs(run_dirs, out)
    write_summary(result.run_dir)
    return Run(result.run_dir, result.status, {}, result.message)


def load_run(path: str | Path) -> Run:
    """A run folder written earlier (the tables are rebuilt if the folder has none)."""
    path = Path(path)
    if not (path / "manifest.json").exists():
        raise HarnessError(f"{path}: not a run folder (no manifest.json)")
    run_ = Run(path, status="")
    run_.status = run_.manifest.get("status") or "unknown"
    skipped = {name: info.get("skipped") for name, info in (run_.manifest.get("variants") or {}).items()
               if info.get("skipped")}
    run_.skipped, run_.message = skipped, run_.manifest.get("message")
    return run_


def compare(baseline: Run | str | Path, candidate: Run | str | Path, **kwargs: Any) -> CompareResult:
    """The regression gate: `result.failed`, `result.exit_code`, and per-variant metric deltas.

    Keyword arguments: variant, max_drop (default 0.02), alpha (default 0.05), allow_different_evalset.
    """
    def folder(x: Run | str | Path) -> Path:
        return x.path if isinstance(x, Run) else Path(x)

    return compare_runs(folder(baseline), folder(candidate), **kwargs)
