"""A run from start to finish: open the run folder, plan, execute, and close the manifest.

    config -> eval set -> plan (prices, keys, server, index, prompts) -> execute (calls, cache, records)

Everything computed is on disk before `run` returns or raises; the tables and reports are built from the
folder afterwards (harness.report.write), so this module never imports them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
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
from harness import clock
from harness.config import RunConfig, VariantConfig, load_config
from harness.data.evalset import EvalSet, load_evalset, select_test_items, split_items
from harness.errors import ConfigError, HarnessError
from harness.models import cache as response_cache
from harness.models.client import ModelRefused
from harness.records import EvalItem
from harness.redact import redacted_fields, restore_secrets, snapshot
from harness.rundir.folder import RunFolder, git_revision, latest_records, new_run_dir, now_iso
from harness.rundir.manifest import Clusters, Manifest
from harness.runner import sequential
from harness.runner.execute import Executor
from harness.runner.leakage import leakage_action, leakage_lines
from harness.runner.plan import Plan
from harness.runner.reference import apply_reference, resolve_source, source_of
from harness.runner.shards import Shard
from harness.scoring.reference import ReferenceSource
from harness.scoring.suite import TaskScoring


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
    # The day table prices are dated against (--today; a date or "YYYY-MM-DD"); None: the system's date.
    today: dt.date | str | None = None
    cache_path: Path | None = None
    retry_errors: bool = False  # with resume: ask items whose record is an error (no answer) again
    # "K/N" (or a Shard): only the selected items whose id hashes to shard K of N (harness.runner.shards)
    shard: Shard | str | tuple[int, int] | None = None
    force: bool = False  # with out: replace the run folder already there (only a run folder is ever deleted)
    reference: str | None = None  # "RUN_DIR:VARIANT": score every variant against a saved run's answers
    # "train": ask the train items instead of the held-out ones, to record a model's answers as training targets
    # (harness.finetune.distill); the manifest says so and the reports say these are not a held-out evaluation.
    split: str = "test"


@dataclass
class RunResult:
    run_dir: Path
    status: str  # completed | nothing_run | stopped_early | interrupted | failed
    skipped: dict[str, str] = field(default_factory=dict)
    message: str | None = None


@dataclass
class _Session:
    """What a run works on: the config, eval set, folder and manifest, whether new or resumed."""

    cfg: RunConfig
    evalset: EvalSet
    folder: RunFolder  # made on disk once the checks before the first call pass (_open_folder)
    manifest: Manifest
    config_path: str | None
    variants: list[VariantConfig]

    @property
    def run_dir(self) -> Path:
        return self.folder.path

    def save(self) -> None:
        self.folder.write_manifest(self.manifest)


def _select_variants(cfg: RunConfig, names: list[str] | None) -> list[VariantConfig]:
    if not names:
        return list(cfg.variants)
    unknown = [n for n in names if n not in {v.name for v in cfg.variants}]
    if unknown:
        raise ConfigError(f"--variants: unknown variant(s) {', '.join(unknown)} "
                          f"(config has: {', '.join(v.name for v in cfg.variants)})")
    return [v for v in cfg.variants if v.name in names]


def _resume_session(opts: RunOptions) -> _Session:
    folder = RunFolder.open(opts.resume)
    cfg = folder.config()
    manifest = folder.manifest
    if any(redacted_fields(m) for m in cfg.models.values()):
        restore_secrets(cfg, _original_config(manifest.config_path))
    opts.limit = manifest.limit
    opts.variants = manifest.selected_variants
    opts.split = manifest.split or "test"
    opts.shard = Shard(manifest.shard.index, manifest.shard.count) if manifest.shard else None
    evalset = load_evalset(cfg.evalset)
    if manifest.evalset.content_hash != evalset.content_hash:
        raise HarnessError(f"{cfg.evalset}: the eval set changed since {folder.path} started; start a new run "
                           f"instead")
    return _Session(cfg, evalset, folder, manifest, manifest.config_path, _select_variants(cfg, opts.variants))


def _original_config(path: str | None) -> RunConfig | None:
    """The config file a run started from, if it is still there and valid (the credentials config.json does
    not hold live only there: harness.redact)."""
    if not path or not Path(path).exists():
        return None
    try:
        return load_config(path)
    except HarnessError:
        return None


def _new_session(config: str | Path, opts: RunOptions) -> _Session:
    if opts.shard is not None:
        opts.shard = Shard.parse(opts.shard)  # a bad K/N stops here, before a run folder is made
    cfg = load_config(config)
    evalset = load_evalset(cfg.evalset)
    scoring = TaskScoring.for_evalset(evalset)  # binds task.yaml's scorers: a bad one stops the run here
    variants = _select_variants(cfg, opts.variants)
    _check_split(evalset, opts.split, variants)
    run_dir = new_run_dir(cfg, opts.out, opts.results_dir, force=opts.force)  # chosen; made after the checks
    manifest = Manifest(
        run_id=run_dir.name,
        name=cfg.name,
        config_path=str(config),
        evalset={"name": evalset.name, "path": str(evalset.path), "content_hash": evalset.content_hash,
                 "test_items": len(evalset.test), "train_items": len(evalset.train), "docs": len(evalset.docs)},
        harness_version=harness.__version__,
        git_revision=git_revision(),
        python=platform.python_version(),
        platform=platform.platform(),
        started_at=now_iso(),
        limit=opts.limit or cfg.run.limit,
        selection=select_test_items(evalset, opts.limit or cfg.run.limit, _selection_seed(cfg), opts.split)[1],
        split=opts.split,
        selected_variants=[v.name for v in variants],
        output_schema=evalset.schema,
        label_fields=evalset.label_fields,
        scoring=scoring.describe(),
        status="running",
    )
    clusters = evalset.clusters()
    if clusters is not None:
        manifest.clusters = Clusters(by=str(evalset.task.cluster), items=clusters)
    if opts.shard is not None:
        manifest.shard = Shard.parse(opts.shard).to_manifest()
    return _Session(cfg, evalset, RunFolder(run_dir), manifest, str(config), variants)


def _check_split(evalset: EvalSet, split: str, variants: list[VariantConfig]) -> None:
    """A train-split run records answers to train on: a variant that shows the model train items (few-shot)
    would be shown the very item it answers, with its label, so its answers would copy the label."""
    from harness.prompts.kinds.base import kind_of

    if split not in ("test", "train"):
        raise ConfigError(f"--split {split}: give test or train")
    if split != "train":
        return
    if not evalset.train:
        raise ConfigError(f"--split train: {evalset.path / 'train.jsonl'} has no items to answer")
    shows = [v.name for v in variants if kind_of(v).shows_train_items]
    if shows:
        raise ConfigError(f"--split train: variant(s) {', '.join(shows)} show the model train items (few-shot), so "
                          f"on the train split they would see the item they answer; pick others with --variants")


def _open_folder(s: _Session, opts: RunOptions) -> None:
    """The new run's folder, made once the checks before the first call passed: a run that stops on a config
    problem leaves no folder behind (and --force replaces an earlier run only for a run that can start)."""
    s.folder = RunFolder.create(s.run_dir, snapshot(s.cfg), s.manifest, replace=opts.force)


def _selection_seed(cfg: RunConfig) -> int:
    return cfg.run.seed if cfg.run.seed is not None else 0


def _selected_items(s: _Session, opts: RunOptions) -> list[EvalItem]:
    """The items of this run: the ones its manifest recorded (so --resume asks the same items), else a seeded
    sample for a limit (see select_test_items), else the first `limit` (how a version-1 run chose: its manifest's
    selection, migrated, says so) or all."""
    selection = s.manifest.selection
    ids = selection.item_ids if selection is not None else None
    pool = split_items(s.evalset, opts.split)
    if ids is None:
        limit = selection.limit if selection is not None else opts.limit or s.cfg.run.limit
        return pool[:limit] if limit else list(pool)
    by_id = {item.id: item for item in pool}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise HarnessError(f"{s.folder.manifest_path}: selected item(s) {', '.join(missing[:5])} are not in "
                           f"{s.evalset.path / (opts.split + '.jsonl')}; start a new run instead")
    return [by_id[i] for i in ids]


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
                            done: set[tuple[str, str, int]], source: ReferenceSource | None = None) -> None:
    from harness.scoring import judge

    try:
        await plan.build(s.variants, items)
        # On disk before the first call, not only at the end: the folder of a run killed mid-way still says how
        # each variant is priced and which items were selected, so its report shows the same costs.
        s.manifest.variants = plan.describe()
        s.save()
        executor.judge = judge.runtime_for(plan.judge, s.cfg, executor.cache, executor.refresh)
        active = {p.variant.name for p in plan.active}
        if executor.monitor is not None and not {executor.monitor.a, executor.monitor.b} <= active:
            print("warning: run.stop_when compares a variant that is not run this time; asking every item",
                  file=sys.stderr)
            executor.monitor = None
        s.manifest.calls = await executor.execute(plan.active, items, done, s.folder.records_path)
        if source is not None:
            await apply_reference(s.folder, s.manifest, executor.scoring, {i.id: i for i in items}, source,
                                  executor.judge)
        if executor.judge is not None and not executor.state.stop:
            rows = await judge.calibrate(executor.scoring.judges(), items, s.evalset.render_input, executor.judge)
            judge.write_calibration(s.folder.calibration_path, rows)
    finally:
        await plan.aclose_clients()


def run(config: str | Path | None, opts: RunOptions) -> RunResult:
    """Run (or, with opts.resume, continue) an evaluation; records and manifest are on disk on return."""
    if opts.retry_errors and opts.resume is None:
        raise HarnessError("--retry-errors asks the errored items of an earlier run again: use it with "
                           "--resume RUN_DIR")
    if opts.force and (opts.resume is not None or opts.out is None):
        raise HarnessError("--force replaces the run folder named by --out: give --out DIR (and not --resume, "
                           "which continues a run)")
    if opts.resume is not None:
        s = _resume_session(opts)
    elif config is None:
        raise HarnessError("run: give a config file, or --resume RUN_DIR")
    else:
        s = _new_session(config, opts)
    plan = Plan(s.cfg, s.evalset, run_dir=s.run_dir, config_path=s.config_path, manifest=s.manifest,
                allow_unpriced=opts.allow_unpriced, progress=opts.progress,
                today=clock.parse_day(opts.today) if isinstance(opts.today, str) else opts.today)
    source = resolve_source(s.cfg.reference, opts.reference, [v.name for v in s.variants]) or source_of(s.manifest)
    plan.check_before_calls(s.variants, source.label() if source is not None else None)
    if opts.resume is None:
        _open_folder(s, opts)
        s.manifest.leakage = leaks = leakage_lines(s.cfg, s.evalset, s.variants)
        s.manifest.leakage_action = leakage_action(s.cfg, s.evalset, s.variants)
        for line in leaks:
            print(f"warning: {line}", file=sys.stderr)
    items = _selected_items(s, opts)
    if opts.shard is not None:  # after the selection, so a shard is a slice of the items a single run takes
        shard = Shard.parse(opts.shard)
        selected, items = len(items), shard.select(items)
        s.manifest.shard = shard.to_manifest().model_copy(update={"items": len(items), "of_items": selected})
    done = _done_keys(s, opts, items)
    monitor = None
    if s.cfg.run.stop_when is not None and opts.split == "test":  # a train-split run records every answer
        if opts.shard is not None:
            raise HarnessError("--shard splits the items between machines, and run.stop_when stops on the items "
                               "asked so far: run a sequential run unsharded")
        items, monitor = sequential.start(s.cfg.run.stop_when, s.manifest, items,
                                          latest_records(s.folder.records(repair=True)), s.cfg.run.repeats,
                                          _selection_seed(s.cfg))
    cache = (response_cache.ResponseCache(opts.cache_path or response_cache.cache_dir() / "responses.sqlite")
             if opts.use_cache else None)
    max_rate = opts.max_error_rate if opts.max_error_rate is not None else s.cfg.run.max_error_rate
    executor_cls = Executor
    if s.cfg.run.mode == "batch":  # the alternative executor: the whole run through the OpenAI Batch API
        from harness.runner.batch import BatchExecutor as executor_cls
    executor = executor_cls(s.cfg, TaskScoring.for_evalset(s.evalset), cache, refresh=opts.refresh,
                            progress=opts.progress, max_error_rate=max_rate)
    executor.monitor = monitor
    status, message = "completed", None
    try:
        with _sigterm_as_interrupt():
            asyncio.run(_plan_and_execute(plan, executor, s, items, done, source))
        if executor.state.stop:
            status, message = "stopped_early", executor.state.stop
        elif executor.monitor is not None and executor.monitor.settled:
            status = "settled"
        elif not plan.active and not _all_done(s, items, done):
            status, message = "nothing_run", _nothing_run_message(plan.skipped)
    except KeyboardInterrupt:
        status, message = "interrupted", f"interrupted; continue with: harness run --resume {s.run_dir}"
    except ModelRefused as exc:  # a permanent error from a model: what is answered stays, --resume continues
        status, message = "failed", (f"{exc}; the answers so far are kept: after fixing it, continue with "
                                     f"harness run --resume {s.run_dir}")
        raise ModelRefused(message, exc.kind, exc.status) from None
    except HarnessError as exc:
        status, message = "failed", str(exc)
        raise
    except Exception as exc:
        status, message = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        plan.stop_local()
        if cache is not None:
            cache.close()
        if monitor is not None:  # the one the run started with (the executor drops it when it cannot apply)
            message = sequential.close(monitor, s.manifest, len(items)) or message
        _close_manifest(s, plan, status, message)
    return RunResult(s.run_dir, status, plan.skipped, message)


def _done_keys(s: _Session, opts: RunOptions, items: list[EvalItem]) -> set[tuple[str, str, int]]:
    """(variant, item, repeat) keys that already have a record; with --retry-errors, not those whose latest
    record is an error (a call that never got an answer): they are asked again, and the new record, appended
    after the old one, is the one the tables use."""
    latest = latest_records(s.folder.records(repair=True))
    if not opts.retry_errors:
        return {r.key for r in latest}
    wanted = {v.name for v in s.variants}
    item_ids = {i.id for i in items}
    errored = [r for r in latest if r.error is not None and r.variant in wanted and r.item_id in item_ids]
    print(f"--retry-errors: asking {len(errored)} errored item(s) again"
          + (f" ({', '.join(sorted({r.variant for r in errored}))})" if errored else ""), file=sys.stderr)
    s.manifest.retried_errors = [*s.manifest.retried_errors, {"at": now_iso(), "records": len(errored)}]
    return {r.key for r in latest} - {r.key for r in errored}


def _all_done(s: _Session, items: list[EvalItem], done: set[tuple[str, str, int]]) -> bool:
    return all((v.name, i.id, r) in done for v in s.variants for i in items for r in range(s.cfg.run.repeats))


def _nothing_run_message(skipped: dict[str, str]) -> str:
    reasons = "\n".join(f"  {name}: {reason}" for name, reason in skipped.items())
    return ("nothing was run: every variant was skipped, so nothing was measured:\n" + reasons
            + "\nfix the causes above and run again")


def _close_manifest(s: _Session, plan: Plan, status: str, message: str | None) -> None:
    s.manifest.variants = plan.describe() or s.manifest.variants
    if plan.describe_judge() is not None:
        s.manifest.judge = plan.describe_judge()
    s.manifest.status = status
    s.manifest.message = message
    s.manifest.finished_at = now_iso()
    s.save()

