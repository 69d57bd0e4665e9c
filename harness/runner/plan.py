"""Planning: everything that can fail before the first call, done before the first call.

Keys, prices, the embedded server, the RAG index, few-shot pools and every rendered prompt are settled here,
so a run that is going to stop on a config problem stops before it spends money, and execution only calls.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import RunConfig, VariantConfig, api_key_for, header_values
from harness.data.evalset import EvalSet
from harness.errors import ConfigError
from harness.models import cache as response_cache
from harness.models import pricing
from harness.models.client import ModelClient
from harness.models.providers import provider_class, provider_for
from harness.prompts.kinds.base import PrepareContext, VariantKind, kind_of
from harness.prompts.variants import query_texts
from harness.records import EvalItem
from harness.redact import redact_url
from harness.rundir.manifest import Manifest
from harness.runner.preflight import judge_in_use, preflight, skipped_before_calls
from harness.runner.variant_plan import VariantPlan, adapter_record, endpoint_scope, resolve_model_id


@dataclass
class JudgePlan:
    """The judge model, ready to call (see harness.scoring.judge)."""

    model: str
    client: ModelClient
    endpoint_id: str
    price: pricing.Price | None
    unavailable: str | None = None  # why it cannot be asked (probe failed): its scores are then unknown


class Plan:
    """Builds one VariantPlan per variant and owns what planning started (the embedded server, clients)."""

    def __init__(self, cfg: RunConfig, evalset: EvalSet, *, run_dir: Path, config_path: str | None,
                 manifest: Manifest, allow_unpriced: bool = False, progress: bool = True,
                 today: dt.date | None = None):
        self.cfg = cfg
        self.evalset = evalset
        self.run_dir = run_dir
        self.config_path = config_path
        self.manifest = manifest
        self.allow_unpriced = allow_unpriced
        self.progress = progress
        self.today = today  # the day table prices are dated against (None: the system's date; harness.clock)
        self.prices = pricing.PriceTable.load(cfg.pricing)
        self.variants: dict[str, VariantPlan] = {}
        self.servers: dict[str, Any] = {}  # provider name -> the server the harness started for its models
        self.local_specs: dict[str, Any] = {}  # model name -> the spec its server is started with
        self.judge: JudgePlan | None = None  # the judge model, when the task has a judge scorer and `judge:` is set

    def model_id(self, name: str) -> str:
        return resolve_model_id(self.cfg, name)

    # -- checks that stop the run (exit code 2) ------------------------------------------------------------
    def not_yet_trained(self, variants: list[VariantConfig]) -> dict[str, str]:
        """Variants that cannot run yet (model not trained, no train split or docs): skipped with how to fix it."""
        return skipped_before_calls(self.cfg, self.evalset, variants, self.config_path)

    def check_before_calls(self, variants: list[VariantConfig], reference: str | None = None) -> None:
        """Config problems that must stop the run before the first paid call (the ones `harness validate`
        lists: harness.runner.preflight); `reference` is the run's (`--reference` over the config's)."""
        found = preflight(self.cfg, self.evalset, variants, self.prices, allow_unpriced=self.allow_unpriced,
                          config_path=self.config_path, today=self.today, reference=reference)
        for warning in found.warnings:
            self.note_warning(warning)
        for note in found.notes:
            print(f"note: {note}", file=sys.stderr)
        if found.errors:
            more = (f" (and {len(found.errors) - 1} more: `harness validate {self.config_path}` lists them)"
                    if len(found.errors) > 1 and self.config_path else "")
            raise ConfigError(found.errors[0] + more)

    def judge_in_use(self) -> bool:
        """A judge model is asked only when the task has a judge scorer and the run config names one."""
        return judge_in_use(self.cfg, self.evalset)

    def note_warning(self, warning: str) -> None:
        """A table price older than 180 days is used: say so once, naming its date, and keep it in the manifest."""
        seen = self.manifest.price_warnings
        if warning not in seen:
            seen.append(warning)
            print(f"warning: {warning}", file=sys.stderr)

    # -- what planning starts ------------------------------------------------------------------------------
    def start_local(self, variants: list[VariantConfig], skipped: dict[str, str]) -> None:
        """One server per provider the harness starts (the embedded one of `provider: local`), serving every
        model of it in use."""
        names = {v.model for v in variants if self._started_here(v.model) and v.name not in skipped}
        if self.cfg.judge and self.judge_in_use() and self._started_here(self.cfg.judge.model):
            names.add(self.cfg.judge.model)
        by_provider: dict[str, list[str]] = {}
        for name in sorted(names):
            by_provider.setdefault(self.cfg.models[name].provider, []).append(name)
        for provider, group in by_provider.items():
            specs = [self.local_spec(name) for name in group]
            self.servers[provider] = provider_class(provider).start_server(specs, self.run_dir)

    def _started_here(self, name: str) -> bool:
        return provider_class(self.cfg.models[name].provider).started_by_harness

    def base_url(self, name: str) -> str | None:
        m = self.cfg.models[name]
        if self._started_here(name):
            server = self.servers.get(m.provider)
            return server.base_url if server else None
        return m.endpoint

    def local_spec(self, name: str) -> Any:
        """The spec of a model the harness starts (the embedded server's, for a local model): the one the
        server is started with and the cache is keyed on, built once."""
        if name not in self.local_specs:
            self.local_specs[name] = provider_for(self.cfg.models[name]).server_spec(self.model_id(name))
        return self.local_specs[name]

    def endpoint_id(self, v: VariantConfig, client: ModelClient) -> str:
        """What identifies the answering model in the cache: the URL the client actually sends to (for
        `provider: openai` without base_url, OPENAI_BASE_URL or api.openai.com). A server the harness starts
        listens on a new port each run, so its models are keyed by their provider's server identity instead
        (for the embedded one: the files, the llama-cpp-python release and the server settings)."""
        return self.model_endpoint_id(v.model, client)

    def model_endpoint_id(self, name: str, client: ModelClient) -> str:
        m = self.cfg.models[name]
        provider = provider_for(m)
        if provider.started_by_harness:
            return provider.server_identity(self.local_spec(name))
        return redact_url(client.endpoint_url) + endpoint_scope(m)  # credentials never reach the cache

    # -- the plan ------------------------------------------------------------------------------------------
    async def build(self, variants: list[VariantConfig], items: list[EvalItem]) -> None:
        """Start what is needed, then give every variant a client, a price and its prepared prompts."""
        skipped = self.not_yet_trained(variants)
        self.start_local(variants, skipped)
        kinds = {v.name: kind_of(v) for v in variants if v.name not in skipped}
        prepared: dict[str, Any] = {}  # the manifest entries preparation writes (a RAG index's `rag`)
        ctx = PrepareContext.of_run(self.cfg, self.evalset, cache_dir=response_cache.cache_dir(),
                                    progress=self.progress, manifest=prepared)
        if self.cfg.rag.embedding is not None and any(k.embeds_own_queries(ctx) for k in kinds.values()):
            from harness.runner import embedding_plan

            ctx.embedder = embedding_plan.query_embedder(self.cfg, self.prices, response_cache.cache_dir())
        resources = self.prepare_needs(kinds, ctx)
        for key, entry in prepared.items():
            setattr(self.manifest, key, entry)
        clients = self._clients(variants, skipped)
        probes = {name: await c.probe() for name, c in clients.items()}
        for plan in self.variants.values():
            if plan.client is not None and probes.get(plan.variant.model):
                plan.skipped = probes[plan.variant.model]
        t_prepare = time.perf_counter()
        vectors = None
        for plan in self.variants.values():
            if plan.skipped:
                continue
            kind, system_role = kinds[plan.variant.name], self.cfg.models[plan.variant.model].effective_system_role
            try:
                if kind.streamed:
                    vectors = vectors or self.vector_cache()
                    plan.own_vectors = kind.embeds_own_queries(ctx)
                    plan.preparer = kind.batch_preparer(ctx, system_role=system_role,
                                                        resources=resources[plan.variant.name], embed_fn=vectors.embed)
                else:
                    plan.prepared = kind.prepare(ctx, items, system_role=system_role,
                                                 resources=resources[plan.variant.name])
            except ValueError as exc:  # what the variant needs is missing (a pool, the docs): the config's to fix
                raise ConfigError(f"{self.config_path or 'config'}: variants: {plan.variant.name}: {exc}") from None
        streamed = [p for p in self.active if p.preparer is not None]
        if streamed:
            from harness.runner.prompt_stream import PromptStream

            stream = PromptStream(self.evalset, streamed, vectors.embed)
            for p in streamed:
                p.stream = stream
        # Prompt preparation that holds back the first call (the benchmark counts it with the calls phase).
        self.manifest.timings["prepare_s"] = round(time.perf_counter() - t_prepare, 3)
        if any(not p.own_vectors for p in streamed):
            texts = query_texts(self.evalset, items)
            for p in streamed:
                texts += kinds[p.variant.name].embedded_texts(self.evalset)
            if vectors.missing(texts):
                from harness.retrieval.embeddings import load_model

                load_model()  # start-up, like the index: the stream embeds what is missing as the calls go
        await self.build_judge(clients)

    def prepare_needs(self, kinds: dict[str, VariantKind], ctx: PrepareContext) -> dict[str, dict[str, Any]]:
        """What the variants' kinds need before the first call (the RAG index, the few-shot pool), each prepared
        once however many variants declare it (same fingerprint): variant name -> its resources by name."""
        built: dict[str, Any] = {}
        out: dict[str, dict[str, Any]] = {}
        for name, kind in kinds.items():
            out[name] = {}
            for need in kind.needs(ctx):
                if need.fingerprint not in built:
                    try:
                        built[need.fingerprint] = need.build(ctx)
                    except ValueError as exc:  # what the variant needs is missing: the config's to fix
                        raise ConfigError(f"{self.config_path or 'config'}: variants: {name}: {exc}") from None
                out[name][need.name] = built[need.fingerprint]
        return out

    async def build_judge(self, clients: dict[str, ModelClient]) -> None:
        """The judge's own client (its answer schema is the verdict's, not the task's), price and cache identity.
        An unreachable judge does not stop the run: the judge's scores are unknown, with the reason."""
        if not self.judge_in_use():
            return
        from harness.scoring.judge import VERDICT_SCHEMA

        assert self.cfg.judge is not None
        name = self.cfg.judge.model
        m = self.cfg.models[name]
        client = ModelClient(name, m, self.model_id(name), self.base_url(name), api_key_for(m), VERDICT_SCHEMA,
                             headers=header_values(m))
        shared = clients.get(name)
        unavailable = await (shared or client).probe()
        self.judge = JudgePlan(name, client, self.model_endpoint_id(name, client),
                               self.prices.for_model(m, client.model_id), unavailable)

    def describe_judge(self) -> dict[str, Any] | None:
        """The manifest's `judge` entry."""
        if self.cfg.judge is None:
            return None
        j = self.judge
        return {"model": self.cfg.judge.model, "model_id": j.client.model_id if j else self.model_id(self.cfg.judge.model),
                "used": j is not None, "unavailable": j.unavailable if j else None,
                "price": pricing.describe(j.price) if j and j.price else None}

    def vector_cache(self) -> Any:
        """Embeddings by text (the few-shot pool, each item's query), shared with every run on this machine."""
        from harness.retrieval.vector_cache import VectorCache

        if getattr(self, "_vectors", None) is None:
            self._vectors = VectorCache(response_cache.cache_dir() / "embeddings.sqlite")
        return self._vectors

    def _clients(self, variants: list[VariantConfig], skipped: dict[str, str]) -> dict[str, ModelClient]:
        clients: dict[str, ModelClient] = {}
        for v in variants:
            plan = VariantPlan(variant=v)
            self.variants[v.name] = plan
            if v.name in skipped:
                plan.skipped = skipped[v.name]
                continue
            m = self.cfg.models[v.model]
            if v.model not in clients:
                clients[v.model] = ModelClient(v.model, m, self.model_id(v.model), self.base_url(v.model),
                                               api_key_for(m), self.evalset.schema, headers=header_values(m),
                                               tools=self.evalset.tools, tool_choice=self.evalset.task.tool_choice)
            plan.client = clients[v.model]
            plan.price = self.prices.for_model(m, plan.client.model_id, batch=self.cfg.run.mode == "batch")
            plan.stop = list(v.stop if v.stop is not None else m.stop)
            plan.endpoint_id = self.endpoint_id(v, plan.client)
        return clients

    @property
    def active(self) -> list[VariantPlan]:
        return [p for p in self.variants.values() if not p.skipped]

    @property
    def skipped(self) -> dict[str, str]:
        return {name: p.skipped for name, p in self.variants.items() if p.skipped}

    def describe(self) -> dict[str, Any]:
        """The manifest's `variants` entry: how each variant was answered and priced, or why it was skipped."""
        out = {}
        for name, p in self.variants.items():
            m = self.cfg.models[p.variant.model]
            out[name] = {
                "kind": p.variant.kind,
                "model": p.variant.model,
                "model_id": p.client.model_id if p.client else self.model_id(p.variant.model),
                "provider": m.provider,
                "structured_output": m.effective_structured_output if self.evalset.schema is not None else "none",
                "system_role": m.effective_system_role,
                "price": pricing.describe(p.price) if p.price else None,
                "price_per_hour": m.price_per_hour,
                "adapter": adapter_record(m.lora),  # only a local model takes a lora (the config checks)
                "price_as": m.price_as,
                "reasoning": p.client.reasoning if p.client else m.reasoning,
                "reasoning_effort": m.reasoning_effort,
                "headers": sorted(m.headers),  # names only; values never reach the run folder
                "skipped": p.skipped,
                "rate_limit": p.client.limiter.describe() if p.client is not None and p.client.limiter.active else None,
                "settings": p.variant.model_dump(mode="json"),
            }
        return out

    async def aclose_clients(self) -> None:
        seen: set[int] = set()
        judge = [self.judge.client] if self.judge is not None else []
        for client in [plan.client for plan in self.variants.values()] + judge:
            if client is not None and id(client) not in seen:
                seen.add(id(client))
                with contextlib.suppress(Exception):
                    await client.aclose()

    def stop_local(self) -> None:
        while self.servers:
            self.servers.popitem()[1].stop()
