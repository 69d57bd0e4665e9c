"""items x variants x repeats -> records, written as they complete; then the summary tables."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

import harness
from harness import pricing
from harness.clients import ModelClient
from harness.config import RunConfig, VariantConfig, api_key_for, load_config, snapshot
from harness.errors import ConfigError, HarnessError
from harness.evalset import EvalSet, load_evalset
from harness.scoring import Scorer
from harness.types import CallError, Completion, EvalItem, Record, Usage
from harness.variants import Prepared, prepare

MIN_RECORDS_FOR_ERROR_RATE = 20


@dataclass
class RunOptions:
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
class VariantPlan:
    variant: VariantConfig
    client: ModelClient | None = None
    price: pricing.Price | None = None
    prepared: dict[str, Prepared] = field(default_factory=dict)
    skipped: str | None = None
    stop: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    run_dir: Path
    status: str
    records: int
    skipped: dict[str, str]
    message: str | None = None


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


def cache_dir() -> Path:
    from harness.local import cache_dir as shared_cache_dir

    return shared_cache_dir()


class Runner:
    def __init__(self, cfg: RunConfig, evalset: EvalSet, opts: RunOptions, run_dir: Path,
                 manifest: dict[str, Any], config_path: str | None):
        self.cfg = cfg
        self.evalset = evalset
        self.opts = opts
        self.run_dir = run_dir
        self.manifest = manifest
        self.config_path = config_path
        self.scorer = Scorer(evalset.schema)
        self.prices = pricing.PriceTable.load(cfg.pricing)
        self.plans: dict[str, VariantPlan] = {}
        self.local_server: Any = None
        self.cache: Any = None

    # -- setup -------------------------------------------------------------------------------------
    def selected_items(self) -> list[EvalItem]:
        limit = self.opts.limit or self.cfg.run.limit
        return self.evalset.test[:limit] if limit else list(self.evalset.test)

    def not_yet_trained(self, variants: list[VariantConfig]) -> dict[str, str]:
        """Fine-tuned variants whose model does not exist yet: skipped with how to create it."""
        out = {}
        for v in variants:
            m = self.cfg.models[v.model]
            if m.model is None and m.model_file is not None and not m.model_file.exists():
                out[v.name] = (f"no fine-tuned model id in {m.model_file} yet; create it with "
                               f"`harness finetune openai {self.config_path or 'CONFIG'}`")
            elif m.provider == "local" and m.lora is not None and not m.lora.exists():
                out[v.name] = (f"no fine-tuned adapter at {m.lora} yet; create it with "
                               f"`harness finetune local {self.config_path or 'CONFIG'}` and run again")
        return out

    def check_before_calls(self, variants: list[VariantConfig]) -> None:
        """Config problems that must stop the run before the first paid call (exit code 2)."""
        pending = self.not_yet_trained(variants)
        for v in variants:
            if v.name in pending:
                continue
            m = self.cfg.models[v.model]
            env = m.effective_api_key_env
            if m.provider == "openai" and env and not os.environ.get(env):
                raise ConfigError(
                    f"models.{v.model}: environment variable {env} is not set; export it (the key is read from the "
                    f"environment only) or set api_key_env to the variable that holds it"
                )
            if m.provider == "openai-compatible" and m.api_key_env and not os.environ.get(m.api_key_env):
                raise ConfigError(f"models.{v.model}: environment variable {m.api_key_env} is not set")
            model_id = self.model_id(v.model)
            price = self.prices.for_model(m, model_id)
            if not price.known and not self.opts.allow_unpriced:
                raise ConfigError(
                    f"models.{v.model}: no price for model {model_id!r}; add it to a pricing file "
                    f"(`pricing:` in the config), set `price:` on the model, or pass --allow-unpriced "
                    f"(its cost is then reported as unknown)"
                )

    def model_id(self, name: str) -> str:
        return resolve_model_id(self.cfg, name)

    def start_local(self, variants: list[VariantConfig]) -> dict[str, str]:
        """Start one embedded server for every local model in use; returns skip reasons."""
        skipped = self.not_yet_trained(variants)
        local_names = sorted({v.model for v in variants
                              if self.cfg.models[v.model].provider == "local" and v.name not in skipped})
        if not local_names:
            return skipped
        from harness import local

        specs = []
        for name in local_names:
            m = self.cfg.models[name]
            gguf = m.gguf or local.ensure_gguf()
            specs.append(local.LocalModelSpec(alias=self.model_id(name), gguf=gguf, lora=m.lora))
        if specs:
            server = local.LocalServer(specs, log_path=self.run_dir / "local-server.log")
            server.start()
            self.local_server = server
        return skipped

    def base_url(self, name: str) -> str | None:
        m = self.cfg.models[name]
        if m.provider == "local":
            return self.local_server.base_url if self.local_server else None
        return m.base_url

    def build_rag(self, variants: list[VariantConfig]) -> Any:
        if not any(v.kind == "rag" for v in variants) or not self.evalset.docs:
            return None
        from harness.rag import RagIndex

        index_dir = self.cfg.rag.index_dir or (cache_dir() / "chroma")
        t0 = time.perf_counter()
        index = RagIndex.build(self.evalset.docs, index_dir, self.evalset.name,
                               max_chars=self.cfg.rag.chunk_chars, overlap=self.cfg.rag.chunk_overlap,
                               show_progress=self.opts.progress)
        self.manifest["rag"] = {"index_dir": str(index_dir), "chunks": index.n_chunks, "reused": index.reused,
                                "build_s": round(time.perf_counter() - t0, 3), "docs": len(self.evalset.docs)}
        return index

    async def plan(self, variants: list[VariantConfig], items: list[EvalItem]) -> None:
        skipped = self.start_local(variants)
        rag_index = None
        if any(v.kind == "rag" for v in variants if v.name not in skipped):
            if not self.evalset.docs:
                for v in variants:
                    if v.kind == "rag":
                        skipped[v.name] = f"the eval set has no docs/ or docs.jsonl under {self.evalset.path}"
            else:
                rag_index = self.build_rag(variants)
        clients: dict[str, ModelClient] = {}
        for v in variants:
            plan = VariantPlan(variant=v)
            self.plans[v.name] = plan
            if v.name in skipped:
                plan.skipped = skipped[v.name]
                continue
            m = self.cfg.models[v.model]
            if v.model not in clients:
                clients[v.model] = ModelClient(v.model, m, self.model_id(v.model), self.base_url(v.model),
                                               api_key_for(m), self.evalset.schema)
            plan.client = clients[v.model]
            plan.price = self.prices.for_model(m, plan.client.model_id)
            plan.stop = list(v.stop if v.stop is not None else m.stop)
        probes = {name: await c.probe() for name, c in clients.items()}
        for plan in self.plans.values():
            if plan.client is not None and probes.get(plan.variant.model):
                plan.skipped = probes[plan.variant.model]
        seed = self.cfg.run.seed or 0
        for plan in self.plans.values():
            if plan.skipped:
                continue
            m = self.cfg.models[plan.variant.model]
            try:
                plan.prepared = prepare(plan.variant, self.evalset, items, system_role=m.effective_system_role,
                                        seed=seed, rag_index=rag_index)
            except ValueError as exc:
                plan.skipped = str(exc)

    # -- calls -------------------------------------------------------------------------------------
    def _record(self, plan: VariantPlan, item: EvalItem, repeat: int, request: dict[str, Any],
                result: Completion | CallError, started: float) -> Record:
        v = plan.variant
        prep = plan.prepared[item.id]
        rec = Record(item_id=item.id, variant=v.name, model=v.model, model_id=plan.client.model_id, repeat=repeat,
                     request=request, expected=item.expected, retrieved_doc_ids=prep.retrieved_doc_ids,
                     shot_ids=prep.shot_ids, started_at=started)
        if isinstance(result, CallError):
            rec.error, rec.error_kind, rec.attempts = result.message, result.kind, result.attempts
            rec.latency_s = result.latency_s
        else:
            rec.raw_text, rec.usage, rec.latency_s = result.text, result.usage, result.latency_s
            rec.finish_reason, rec.attempts, rec.cache_hit = result.finish_reason, result.attempts, result.cache_hit
            rec.cost_usd = pricing.cost_usd(result.usage, plan.price) if plan.price else None
            if result.finish_reason == "length":
                rec.error_kind = "length"
                rec.error = f"output cut off at max_tokens={request.get('max_tokens')} (raise run.max_tokens)"
            else:
                rec.parsed, rec.scores = self.scorer.score(result.text, item.expected)
        if prep.retrieved_doc_ids is not None and item.expected_doc_ids:
            from harness.rag import recall_at_k, reciprocal_rank

            rec.scores["recall_at_k"] = recall_at_k(item.expected_doc_ids, prep.retrieved_doc_ids, v.top_k)
            rec.scores["mrr"] = reciprocal_rank(item.expected_doc_ids, prep.retrieved_doc_ids)
        return rec

    def endpoint_id(self, plan: VariantPlan) -> str:
        """What identifies the answering model in the cache. The embedded server listens on a new port
        each run, so local models are keyed by their files instead (a retrained adapter is a new model)."""
        m = self.cfg.models[plan.variant.model]
        if m.provider != "local":
            return plan.client.base_url or "openai"
        parts = ["local"]
        for f in (m.gguf, m.lora):
            if f is not None and f.exists():
                st = f.stat()
                parts.append(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}")
        if m.gguf is None:
            parts.append("embedded-gemma-3-270m")
        return "|".join(parts)

    def request_for(self, plan: VariantPlan, item: EvalItem) -> dict[str, Any]:
        v = plan.variant
        run = self.cfg.run
        return plan.client.build_request(
            plan.prepared[item.id].messages,
            temperature=v.temperature if v.temperature is not None else run.temperature,
            max_tokens=v.max_tokens or run.max_tokens,
            seed=run.seed, stop=plan.stop,
        )

    def cached_record(self, plan: VariantPlan, item: EvalItem, repeat: int, request: dict[str, Any],
                      hit: dict[str, Any]) -> Record:
        comp = Completion(text=hit["text"], usage=Usage(**hit["usage"]), latency_s=hit["latency_s"],
                          finish_reason=hit.get("finish_reason"), attempts=0, cache_hit=True)
        return self._record(plan, item, repeat, request, comp, time.time())

    def prefetch_cached(self, jobs: list[tuple[VariantPlan, EvalItem, int]]) -> tuple[list[Record], list[Any]]:
        """Answer every job the cache already holds, in bulk and without the async machinery, so a
        re-run costs little more than reading the cache; returns (records, jobs still to call)."""
        from harness.cache import cache_key

        keyed = []
        for plan, item, r in jobs:
            request = self.request_for(plan, item)
            keyed.append((plan, item, r, request, cache_key(self.endpoint_id(plan), request, r)))
        hits = self.cache.get_many([k[4] for k in keyed])
        records, rest = [], []
        for plan, item, r, request, key in keyed:
            hit = hits.get(key)
            if hit is not None:
                records.append(self.cached_record(plan, item, r, request, hit))
            else:
                rest.append((plan, item, r))
        return records, rest

    async def call(self, plan: VariantPlan, item: EvalItem, repeat: int) -> Record:
        request = self.request_for(plan, item)
        started = time.time()
        key = None
        if self.cache is not None:
            from harness.cache import cache_key

            key = cache_key(self.endpoint_id(plan), request, repeat)
            if not self.opts.refresh:
                hit = self.cache.get(key)
                if hit is not None:
                    return self.cached_record(plan, item, repeat, request, hit)
        result = await plan.client.complete(request)
        if key is not None and isinstance(result, Completion):
            self.cache.put(key, {"text": result.text, "usage": result.usage.model_dump(),
                                 "latency_s": result.latency_s, "finish_reason": result.finish_reason})
        return self._record(plan, item, repeat, request, result, started)

    async def execute(self, items: list[EvalItem], done: set[tuple[str, str, int]]) -> str:
        jobs = [
            (plan, item, r)
            for r in range(self.cfg.run.repeats)
            for plan in self.plans.values() if not plan.skipped
            for item in items
            if (plan.variant.name, item.id, r) not in done
        ]
        t_start = time.perf_counter()
        max_rate = self.opts.max_error_rate if self.opts.max_error_rate is not None else self.cfg.run.max_error_rate
        state = {"done": 0, "errors": 0, "stop": None}
        records_path = self.run_dir / "records.jsonl"
        bar = tqdm(total=len(jobs), unit="call", desc="running", disable=not self.opts.progress, mininterval=0.25,
                   dynamic_ncols=True, file=sys.stderr)
        with records_path.open("a", encoding="utf-8") as out:
            if self.cache is not None and not self.opts.refresh and jobs:
                cached, jobs = self.prefetch_cached(jobs)
                if cached:
                    out.write("".join(rec.model_dump_json() + "\n" for rec in cached))
                    out.flush()
                    state["done"] += len(cached)
                    state["errors"] += sum(1 for rec in cached if rec.error is not None)
                    bar.update(len(cached))
            it = iter(jobs)
            async def worker() -> None:
                for plan, item, r in it:
                    if state["stop"]:
                        return
                    rec = await self.call(plan, item, r)
                    out.write(rec.model_dump_json() + "\n")
                    out.flush()  # in the OS's hands now: a SIGKILL loses nothing already answered
                    state["done"] += 1
                    if rec.error is not None:
                        state["errors"] += 1
                        bar.set_postfix(errors=state["errors"], refresh=False)
                    bar.update(1)
                    if (max_rate is not None and state["done"] >= MIN_RECORDS_FOR_ERROR_RATE
                            and state["errors"] / state["done"] > max_rate):
                        state["stop"] = (f"stopped early: error rate {state['errors'] / state['done']:.0%} "
                                         f"exceeded --max-error-rate {max_rate:.0%} after {state['done']} calls")
                        return

            workers = [asyncio.create_task(worker()) for _ in range(min(self.cfg.run.concurrency, len(jobs)) or 1)]
            try:
                await asyncio.gather(*workers)
            finally:
                for w in workers:
                    w.cancel()
                bar.close()
        self.manifest["calls"] = {"this_session": state["done"], "errors_this_session": state["errors"],
                                  "seconds": round(time.perf_counter() - t_start, 3)}
        return state["stop"] or ""


def few_shot_pool(cfg: RunConfig, evalset: EvalSet, variants: list[VariantConfig]) -> set[str]:
    from harness.variants import stratified_examples

    pool: set[str] = set()
    for v in variants:
        if v.kind != "few_shot":
            continue
        if v.selection == "first":
            pool |= {i.id for i in evalset.train[: v.shots]}
        elif v.selection == "stratified":
            pool |= {i.id for i in stratified_examples(evalset, v.shots, cfg.run.seed or 0)}
        else:
            pool |= {i.id for i in evalset.train}
    return pool


def leakage_lines(cfg: RunConfig, evalset: EvalSet, variants: list[VariantConfig]) -> list[str]:
    from harness.leakage import check_leakage, summarize_findings

    return summarize_findings(check_leakage(evalset), evalset, few_shot_pool(cfg, evalset, variants))


def resolve_model_id(cfg: RunConfig, name: str) -> str:
    """The id the endpoint answers to: `model`, else the content of `model_file`, else (local) the config name."""
    m = cfg.models[name]
    if m.model:
        return m.model
    if m.model_file is not None and m.model_file.exists():
        return m.model_file.read_text("utf-8").strip()
    return name


def new_run_dir(cfg: RunConfig, opts: RunOptions) -> Path:
    if opts.out is not None:
        run_dir = opts.out
        if (run_dir / "records.jsonl").exists():
            raise ConfigError(f"{run_dir}: already holds a run; use --resume {run_dir} to continue it, or another --out")
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = opts.results_dir / f"{cfg.name}-{stamp}"
        n = 1
        while run_dir.exists():
            n += 1
            run_dir = opts.results_dir / f"{cfg.name}-{stamp}-{n}"
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def load_run_config(run_dir: Path) -> RunConfig:
    path = run_dir / "config.json"
    if not path.exists():
        raise HarnessError(f"{run_dir}: not a run folder (no config.json)")
    return RunConfig.model_validate_json(path.read_text("utf-8"))


def run(config: str | Path | None, opts: RunOptions) -> RunResult:
    """Run (or resume) an evaluation. Everything computed is on disk before this returns or raises."""
    if opts.resume is not None:
        run_dir = opts.resume
        cfg = load_run_config(run_dir)
        manifest = json.loads((run_dir / "manifest.json").read_text("utf-8"))
        opts.limit = manifest.get("limit")
        opts.variants = manifest.get("selected_variants")
        config_path = manifest.get("config_path")
    else:
        assert config is not None
        cfg = load_config(config)
        config_path = str(config)
        manifest = {}
    evalset = load_evalset(cfg.evalset)
    if opts.resume is not None and manifest.get("evalset", {}).get("content_hash") != evalset.content_hash:
        raise HarnessError(f"{cfg.evalset}: the eval set changed since {run_dir} started; start a new run instead")
    variants = cfg.variants
    if opts.variants:
        unknown = [n for n in opts.variants if n not in {v.name for v in cfg.variants}]
        if unknown:
            raise ConfigError(f"--variants: unknown variant(s) {', '.join(unknown)} "
                              f"(config has: {', '.join(v.name for v in cfg.variants)})")
        variants = [v for v in cfg.variants if v.name in opts.variants]
    if opts.resume is None:
        run_dir = new_run_dir(cfg, opts)
        manifest = {
            "run_id": run_dir.name,
            "name": cfg.name,
            "config_path": config_path,
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
    runner = Runner(cfg, evalset, opts, run_dir, manifest, config_path)
    runner.check_before_calls(variants)
    if opts.resume is None:
        leaks = leakage_lines(cfg, evalset, variants)
        manifest["leakage"] = leaks
        for line in leaks:
            print(f"warning: {line}", file=sys.stderr)
    items = runner.selected_items()
    existing = read_records(run_dir / "records.jsonl", repair=True)
    done = {r.key for r in existing}
    status, message = "completed", None
    if opts.use_cache:
        from harness.cache import ResponseCache

        runner.cache = ResponseCache(opts.cache_path or cache_dir() / "responses.sqlite")

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    import threading

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if in_main else None
    try:
        asyncio.run(_plan_and_execute(runner, variants, items, done))
        message = runner.manifest.pop("_stop", None) or None
        if message:
            status = "stopped_early"
    except KeyboardInterrupt:
        status, message = "interrupted", f"interrupted; continue with: harness run --resume {run_dir}"
    except HarnessError:
        status = "failed"
        raise
    except Exception as exc:
        status, message = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        if runner.local_server is not None:
            runner.local_server.stop()
        if runner.cache is not None:
            runner.cache.close()
        manifest = runner.manifest
        manifest["variants"] = {
            name: {
                "kind": p.variant.kind,
                "model": p.variant.model,
                "model_id": p.client.model_id if p.client else runner.model_id(p.variant.model),
                "provider": cfg.models[p.variant.model].provider,
                "structured_output": cfg.models[p.variant.model].effective_structured_output,
                "system_role": cfg.models[p.variant.model].effective_system_role,
                "price": pricing.describe(p.price) if p.price else None,
                "price_per_hour": cfg.models[p.variant.model].price_per_hour,
                "skipped": p.skipped,
                "settings": p.variant.model_dump(mode="json"),
            }
            for name, p in runner.plans.items()
        } or manifest.get("variants", {})
        manifest["status"] = status
        manifest["message"] = message
        manifest["finished_at"] = now_iso()
        write_json(run_dir / "manifest.json", manifest)
    from harness.report import write_summary

    df = write_summary(run_dir)
    n = int(df["n"].fillna(0).sum()) if "n" in df.columns else 0
    skipped = {k: p.skipped for k, p in runner.plans.items() if p.skipped}
    return RunResult(run_dir, status, n, skipped, message)


async def _plan_and_execute(runner: Runner, variants: list[VariantConfig], items: list[EvalItem],
                            done: set[tuple[str, str, int]]) -> None:
    try:
        await runner.plan(variants, items)
        stop = await runner.execute(items, done)
        if stop:
            runner.manifest["_stop"] = stop
    finally:
        for plan in runner.plans.values():
            if plan.client is not None:
                with contextlib.suppress(Exception):
                    await plan.client.aclose()
