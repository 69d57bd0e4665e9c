"""A run from start to finish: open the run folder, plan, execute, and close the manifest.

    config -> eval set -> plan (prices, keys, server, index, prompts) -> execute (calls, cache, records)

Everything computed is on disk before `run` returns or raises; the tables and reports are built from the
folder afterwards (harness.report.write), so this module never imports them.
"""

from __future__ import annotations

import asyncio
import platform
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness.config import RunConfig, VariantConfig, load_config, snapshot
from harness.data.evalset import EvalSet, load_evalset
from harness.errors import ConfigError, HarnessError
from harness.records import EvalItem
from harness.runner import cache as response_cache
from harness.runner.execute import Executor
from harness.runner.folder import (
    git_revision,
    load_manifest,
    load_run_config,
    new_run_dir,
    now_iso,
    read_records,
    write_json,
)
from harness.runner.plan import Plan, leakage_lines
from harness.scoring.scorers import Scorer


@dataclass
class RunOptions:
    """The options of `harness run` (and of `harness.run()`)."""

    limit: int | None = None
    variants: list[str] | None = None
    out: Path | None = None
    results_dir: Path = Path("results")
    resume: Path | None = None
    use_cache: bool = True
    refresh: bool = False
    allow_unpriced: bool = False
    max_error_rate: float | None = None
    progress: bool = True
    cache_path: Path | None = None


@dataclass
class RunResult:
    run_dir: Path
    status: str  # completed | stopped_early | interrupted | failed
    skipped: dict[str, str] = field(default_factory=dict)
    message: str | None = None


@dataclass
class _Session:
    """What a run works on: the config, eval set, folder and manifest, whether new or resumed."""

    cfg: RunConfig
    evalset: EvalSet
    run_dir: Path
    manifest: dict[str, Any]
    config_path: str | None
    variants: list[VariantConfig]


def _select_variants(cfg: RunConfig, names: list[str] | None) -> list[VariantConfig]:
    if not names:
        return list(cfg.variants)
    unknown = [n for n in names if n not in {v.name for v in cfg.variants}]
    if unknown:
        raise ConfigError(f"--variants: unknown variant(s) {', '.join(unknown)} "
                          f"(config has: {', '.join(v.name for v in cfg.variants)})")
    return [v for v in cfg.variants if v.name in names]


def _resume_session(opts: RunOptions) -> _Session:
    run_dir = opts.resume
    cfg = load_run_config(run_dir)
    manifest = load_manifest(run_dir)
    opts.limit = manifest.get("limit")
    opts.variants = manifest.get("selected_variants")
    evalset = load_evalset(cfg.evalset)
    if manifest.get("evalset", {}).get("content_hash") != evalset.content_hash:
        raise HarnessError(f"{cfg.evalset}: the eval set changed since {run_dir} started; start a new run instead")
    return _Session(cfg, evalset, run_dir, manifest, manifest.get("config_path"),
                    _select_variants(cfg, opts.variants))


def _new_session(config: str | Path, opts: RunOptions) -> _Session:
    cfg = load_config(config)
    evalset = load_evalset(cfg.evalset)
    variants = _select_variants(cfg, opts.variants)
    run_dir = new_run_dir(cfg, opts.out, opts.results_dir)
    manifest = {
        "run_id": run_dir.name,
        "name": cfg.name,
        "config_path": str(config),
        "evalset": {"name": evalset.name, "path": str(evalset.path), "content_hash": evalset.content_hash,
                    "test_items": len(evalset.test), "train_items": len(evalset.train),
                    "docs": len(evalset.docs)},
        "harness_version": harness.__version__,
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "started_at": now_iso(),
        "limit": opts.limit or cfg.run.limit,
        "selected_variants": [v.name for v in variants],
        "schema": evalset.schema,
        "label_fields": evalset.label_fields,
        "status": "running",
    }
    write_json(run_dir / "config.json", snapshot(cfg))
    write_json(run_dir / "manifest.json", manifest)
    return _Session(cfg, evalset, run_dir, manifest, str(config), variants)


def _selected_items(s: _Session, opts: RunOptions) -> list[EvalItem]:
    limit = opts.limit or s.cfg.run.limit
    return s.evalset.test[:limit] if limit else list(s.evalset.test)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """`kill` stops a run like Ctrl-C does: records kept, manifest closed, --resume possible."""
    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if in_main else None
    try:
        yield
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


async def _plan_and_execute(plan: Plan, executor: Executor, s: _Session, items: list[EvalItem],
                            done: set[tuple[str, str, int]]) -> None:
    try:
        await plan.build(s.variants, items)
        s.manifest["calls"] = await executor.execute(plan.active, items, done, s.run_dir / "records.jsonl")
    finally:
        await plan.aclose_clients()


def run(config: str | Path | None, opts: RunOptions) -> RunResult:
    """Run (or, with opts.resume, continue) an evaluation; records and manifest are on disk on return."""
    if opts.resume is not None:
        s = _resume_session(opts)
    elif config is None:
        raise HarnessError("run: give a config file, or --resume RUN_DIR")
    else:
        s = _new_session(config, opts)
    plan = Plan(s.cfg, s.evalset, run_dir=s.run_dir, config_path=s.config_path, manifest=s.manifest,
                allow_unpriced=opts.allow_unpriced, progress=opts.progress)
    plan.check_before_calls(s.variants)
    if opts.resume is None:
        s.manifest["leakage"] = leaks = leakage_lines(s.cfg, s.evalset, s.variants)
        for line in leaks:
            print(f"warning: {line}", file=sys.stderr)
    items = _selected_items(s, opts)
    done = {r.key for r in read_records(s.run_dir / "records.jsonl", repair=True)}
    cache = (response_cache.ResponseCache(opts.cache_path or response_cache.cache_dir() / "responses.sqlite")
             if opts.use_cache else None)
    max_rate = opts.max_error_rate if opts.max_error_rate is not None else s.cfg.run.max_error_rate
    executor = Executor(s.cfg, Scorer(s.evalset.schema), cache, refresh=opts.refresh, progress=opts.progress,
                        max_error_rate=max_rate)
    status, message = "completed", None
    try:
        with _sigterm_as_interrupt():
            asyncio.run(_plan_and_execute(plan, executor, s, items, done))
        if executor.state.stop:
            status, message = "stopped_early", executor.state.stop
    except KeyboardInterrupt:
        status, message = "interrupted", f"interrupted; continue with: harness run --resume {s.run_dir}"
    except HarnessError:
        status = "failed"
        raise
    except Exception as exc:
        status, message = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        plan.stop_local()
        if cache is not None:
            cache.close()
        _close_manifest(s, plan, status, message)
    return RunResult(s.run_dir, status, plan.skipped, message)


def _close_manifest(s: _Session, plan: Plan, status: str, message: str | None) -> None:
    s.manifest["variants"] = plan.describe() or s.manifest.get("variants", {})
    s.manifest["status"] = status
    s.manifest["message"] = message
    s.manifest["finished_at"] = now_iso()
    write_json(s.run_dir / "manifest.json", s.manifest)

