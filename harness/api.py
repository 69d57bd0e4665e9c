"""The public Python API, for notebooks and CI scripts; the CLI is a thin layer over the same calls.

    import harness
    run = harness.run("configs/demo.yaml", limit=20, variants=["baseline", "rag"])
    run.summary            # one row per variant, the columns of summary.csv
    run.records            # one row per record
    harness.compare(harness.load_run("results/accepted"), run).failed
    harness.merge(*shard_dirs, out="results/full")  # one run from the folders of `run(..., shard="K/N")`
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from harness import clock
from harness.analysis.compare import compare_runs
from harness.errors import HarnessError
from harness.records import CORE_CHECKS, Record
from harness.report.gate_text import GateReport
from harness.report.write import write_summary
from harness.rundir import Manifest, RunFolder
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
    def folder(self) -> RunFolder:
        """The run folder itself: its files, typed manifest, config and records (harness.rundir)."""
        return RunFolder.open(self.path)

    @property
    def manifest(self) -> Manifest:
        return self.folder.manifest

    @property
    def summary(self) -> pd.DataFrame:
        """One row per variant: exactly summary.csv."""
        if not self.folder.summary_csv.exists():
            write_summary(self.path)
        return pd.read_csv(self.folder.summary_csv)

    @cached_property
    def records(self) -> pd.DataFrame:
        """One row per record (item x variant x repeat), with the scores flattened into columns."""
        return records_frame(self.folder.latest_records())

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.status!r})"


def records_frame(records: list[Record]) -> pd.DataFrame:
    rows = []
    for r in records:
        usage = r.usage
        row: dict[str, Any] = {
            "item_id": r.item_id, "variant": r.variant, "model": r.model, "model_id": r.model_id,
            "repeat": r.repeat, "raw_text": r.raw_text, "parsed": r.parsed, "expected": r.expected,
            "format_valid": r.format_valid, "correct": r.correct,
            "cost_usd": r.cost_usd, "latency_s": r.latency_s, "cache_hit": r.cache_hit, "attempts": r.attempts,
            "finish_reason": r.finish_reason, "error": r.error, "error_kind": r.error_kind,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "cached_tokens": usage.cached_tokens if usage else None,
            "reasoning_tokens": usage.reasoning_tokens if usage else None,
        }
        for key, value in score_values(r).items():
            if key not in row:
                row[f"score_{key}"] = value
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else RECORD_COLUMNS)


def score_values(r: Record) -> dict[str, Any]:
    """What the `score_<name>` columns hold for one record: the core checks it has, every named scorer's value
    (None where unknown or failed), its primary score and its retrieval metrics."""
    out: dict[str, Any] = {k: getattr(r, k) for k in CORE_CHECKS if getattr(r, k) is not None}
    out.update({k: s.value for k, s in r.scores.items()})
    out.update(dict.fromkeys(r.score_errors))
    if r.error is None:
        out["primary"] = r.primary
    if r.retrieval is not None:
        out["recall_at_k"], out["mrr"] = r.retrieval.recall_at_k, r.retrieval.mrr
    return out


_OPTION_NAMES = {f.name for f in fields(RunOptions)}
# The CLI's switches that say "not": the keyword of the same name, and the RunOptions field it turns off.
_NEGATED = {"no_cache": "use_cache", "no_progress": "progress"}
_PATHS = ("out", "results_dir", "resume", "cache_path")
# The CLI's flags as the layers below (shared with the CLI) name them in errors: switches, and flags with a value.
_SWITCHES = {"retry-errors", "no-cache", "refresh", "allow-unpriced", "no-progress", "allow-different-evalset",
             "allow-subset", "allow-scoring-change", "force"}
_VALUED = {"limit", "variants", "out", "results-dir", "resume", "max-error-rate", "shard", "variant", "max-drop",
           "alpha", "allow-missing-variant"}
_FLAG = re.compile(r"--([a-z][a-z-]*)(?: (?!--)(\S+))?")


def keyword_words(message: str) -> str:
    """An error in the API's words: "--limit -5: ..." -> "limit=-5: ...", "pass --allow-different-evalset" ->
    "pass allow_different_evalset=True". A command in backticks (`harness run --resume DIR`) is kept."""
    def as_keyword(m: re.Match[str]) -> str:
        flag, value = m.group(1), m.group(2)
        name, rest = flag.replace("-", "_"), f" {value}" if value else ""
        if flag in _SWITCHES:
            return f"{name}=True{rest}"
        if flag not in _VALUED:
            return m.group(0)
        if value and (value.endswith((":", ",", ";")) or "/" in value or value.isupper() or value[0] in "-0123456789"):
            return f"{name}={value}"  # the value given, or a placeholder such as RUN_DIR
        return name + rest

    parts = message.split("`")
    parts[::2] = [_FLAG.sub(as_keyword, part) for part in parts[::2]]
    return "`".join(parts)


@contextmanager
def _keyword_errors() -> Iterator[None]:
    """The API's errors name its keywords, not the CLI's flags. The CLI calls the undecorated functions
    (`cli_compare`, `cli_merge`; `run` with a RunOptions), whose errors name its flags."""
    try:
        yield
    except HarnessError as exc:
        exc.args = (keyword_words(str(exc)),)
        raise


def _names(variants: Any) -> list[str] | None:
    """`"a,b"` (as on the command line) or `["a", "b"]`: the variant names."""
    if variants is None or isinstance(variants, str):
        names = [x.strip() for x in (variants or "").split(",") if x.strip()]
    elif isinstance(variants, list | tuple) and all(isinstance(x, str) for x in variants):
        names = [x.strip() for x in variants if x.strip()]
    else:
        raise TypeError(f"variants={variants!r}: give variant names as a list or a comma-separated string")
    return names or None


def run_options(**kwargs: Any) -> RunOptions:
    """RunOptions from keywords spelt as the CLI's flags (`no_progress=True`) or as its fields (`progress=False`)."""
    unknown = sorted(set(kwargs) - _OPTION_NAMES - set(_NEGATED))
    if unknown:
        raise TypeError(f"harness.run(): unknown option(s) {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(_OPTION_NAMES | set(_NEGATED)))}")
    values = dict(kwargs)
    for switch, field_name in _NEGATED.items():
        if switch in values:
            if field_name in values:
                raise TypeError(f"harness.run(): give {switch} or {field_name}, not both")
            values[field_name] = not values.pop(switch)
    values.update({k: Path(v) for k, v in values.items() if k in _PATHS and v is not None})
    if "variants" in values:
        values["variants"] = _names(values["variants"])
    limit = values.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise TypeError(f"limit={limit!r}: give a whole number of held-out items")
    if limit is not None and limit < 1:
        raise HarnessError(f"limit={limit}: give 1 or more items (or leave limit out to ask every held-out item)")
    rate = values.get("max_error_rate")
    if rate is not None and not (isinstance(rate, int | float) and not isinstance(rate, bool) and 0 <= rate <= 1):
        raise HarnessError(f"max_error_rate={rate!r}: must be a share between 0 and 1 (0.1 = stop after 10% errors)")
    return RunOptions(**values)


def run(config: str | Path | None = None, options: RunOptions | None = None, **kwargs: Any) -> Run:
    """Run a config (or continue one with resume=RUN_DIR) and build its tables and report.

    Keywords are the CLI's flags (`harness run --help`): limit, variants ("a,b" or ["a", "b"]), out,
    results_dir, resume, retry_errors, no_cache, refresh, allow_unpriced, max_error_rate, no_progress, shard
    ("K/N": this machine's slice), force (with out: replace the run already in that folder); also use_cache and
    progress (the opposites of no_cache and no_progress) and cache_path. Errors name the keyword ("limit=-5: ..."); with a RunOptions instead, they name the CLI's flags.
    """
    if options is not None:
        if kwargs:
            raise TypeError("harness.run(): give either a RunOptions or keyword options, not both")
        return _finish(_run(config, replace(options, variants=_names(options.variants))), options.today)
    with _keyword_errors():
        opts = run_options(**kwargs)
        return _finish(_run(config, opts), opts.today)


def _finish(result: Any, today: Any = None) -> Run:
    """The tables and the report; `today` (the run's --today) dates how long a fine-tune can still serve."""
    write_summary(result.run_dir, clock.parse_day(today) if isinstance(today, str) else today)
    return Run(result.run_dir, result.status, result.skipped, result.message)


@_keyword_errors()
def merge(*run_dirs: str | Path, out: str | Path) -> Run:
    """One run folder at `out` from the folders of every shard of a run (`run(..., shard="K/N")` on N
    machines), with its tables and report built on the merged records. Raises HarnessError (one line) on
    mismatched configs or eval sets, a duplicate or missing shard, or a shard that did not finish."""
    if len(run_dirs) == 1 and isinstance(run_dirs[0], list | tuple):
        run_dirs = tuple(run_dirs[0])
    result = merge_runs(run_dirs, out)
    write_summary(result.run_dir)
    return Run(result.run_dir, result.status, {}, result.message)


def load_run(run_dir: str | Path | None = None, *, path: str | Path | None = None) -> Run:
    """A run folder written earlier, as `harness report RUN_DIR` reads it (the tables are rebuilt if the folder
    has none). `path` is the earlier name of `run_dir`."""
    if (run_dir is None) == (path is None):
        raise TypeError("harness.load_run(): give the run folder once, as run_dir")
    folder = RunFolder.open(Path(run_dir if run_dir is not None else path))
    manifest = folder.manifest
    return Run(folder.path, manifest.status or "unknown", manifest.skipped, manifest.message)


@_keyword_errors()
def compare(accepted: Run | str | Path, candidate: Run | str | Path, **kwargs: Any) -> GateReport:
    """The regression gate of `harness compare ACCEPTED CANDIDATE`: `result.failed`, `result.exit_code`,
    `result.failures` (each with its rule; `result.message(failure)` says it), per-variant metric deltas, and
    `result.to_dict()` / `result.text()`: what `harness compare --json` / `harness compare` print.

    Keyword arguments (the CLI's flags): variant, max_drop (default 0.02), alpha (default 0.05),
    allow_different_evalset, allow_missing_variant (a name or a list of names), allow_subset,
    allow_scoring_change, metric ("accuracy", or "ppi": gate on the judge-corrected accuracy).
    """
    def folder(x: Run | str | Path) -> Path:
        return x.path if isinstance(x, Run) else Path(x)

    return GateReport.of(compare_runs(folder(accepted), folder(candidate), **kwargs))


# The CLI's `harness compare` and `harness merge`: the same calls, with errors that name its flags (--max-drop).
cli_compare = compare.__wrapped__  # type: ignore[attr-defined]
cli_merge = merge.__wrapped__  # type: ignore[attr-defined]
