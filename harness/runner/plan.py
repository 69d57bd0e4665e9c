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
from harness.models import pricing
from harness.models.client import ModelClient
from harness.prompts.variants import (
    batch_preparer,
    needs_query_vectors,
    prepare,
    query_texts,
)
from harness.records import EvalItem
from harness.redact import redact_url
from harness.rundir.manifest import Manifest
from harness.runner import cache as response_cache
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
        self.local_server: Any = None
        self.local_specs: dict[str, Any] = {}  # model name -> the LocalModelSpec the server is started with
        self.judge: JudgePlan | None = None  # the judge model, when the task has a judge scorer and `judge:` is set

    def model_id(self, name: str) -> str:
        return resolve_model_id(self.cfg, name)

    # -- checks that stop the run (exit code 2) ------------------------------------------------------------
    def not_yet_trained(self, variants: list[VariantConfig]) -> dict[str, str]:
        """Variants that cannot run yet (model not trained, no train split or docs): skipped with how to fix it."""
        return skipped_before_calls(self.cfg, self.evalset, variants, self.config_path)

    def check_before_calls(self, variants: list[VariantConfig]) -> None:
        """Config problems that must stop the run before the first paid call (the ones `harness validate`
        lists: harness.runner.preflight)."""
        found = preflight(self.cfg, self.evalset, variants, self.prices, allow_unpriced=self.allow_unpriced,
                          config_path=self.config_path, today=self.today)
        for warning in found.warnings:
            self.note_warning(warning)
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
        """One embedded server for every local model in use."""
        local_names = sorted({v.model for v in variants
                              if self.cfg.models[v.model].provider == "local" and v.name not in skipped}
                             | ({self.cfg.judge.model} if self.cfg.judge and self.judge_in_use()
                                and self.cfg.models[self.cfg.judge.model].provider == "local" else set()))
        if not local_names:
            return
        from harness.models import local

        specs = [self.local_spec(name) for name in local_names]
        server = local.LocalServer(specs, log_path=self.run_dir / "local-server.log")
        server.start()
        self.local_server = server

    def base_url(self, name: str) -> str | None:
        m = self.cfg.models[name]
        if m.provider == "local":
            return self.local_server.base_url if self.local_server else None
        return m.endpoint

    def build_rag(self) -> Any:
        from harness.retrieval.index import RagIndex

        server = self.cfg.rag.server
        index_dir = None if server else self.cfg.rag.index_dir or (response_cache.cache_dir() / "chroma")
        t0 = time.perf_counter()
        index = RagIndex.build(self.evalset.docs, index_dir, self.evalset.name,
                               max_chars=self.cfg.rag.chunk_chars, overlap=self.cfg.rag.chunk_overlap,
                               show_progress=self.progress, server=server)
        where = {"server": server} if server else {"index_dir": str(index_dir)}
        self.manifest.rag = {**where, "collection": index.collection_name, "chunks": index.n_chunks,
                             "reused": index.reused, "embedded": index.embedded,
                             "build_s": round(time.perf_counter() - t0, 3), "docs": len(self.evalset.docs)}
        return index

    def local_spec(self, name: str) -> Any:
        """The embedded server's spec for a local model: the one the server is started with and the cache
        is keyed on, built once."""
        if name not in self.local_specs:
            from harness.models import local

            m = self.cfg.models[name]
            gguf = m.gguf or local.ensure_gguf()
            self.local_specs[name] = local.LocalModelSpec(alias=self.model_id(name), gguf=gguf, lora=m.lora)
        return self.local_specs[name]

    def endpoint_id(self, v: VariantConfig, client: ModelClient) -> str:
        """What identifies the answering model in the cache: the URL the client actually sends to (for
        `provider: openai` without base_url, OPENAI_BASE_URL or api.openai.com). The embedded server
        listens on a new port each run, so local models are keyed by their files, the llama-cpp-python
        release and the server settings instead (a retrained adapter is a new model)."""
        return self.model_endpoint_id(v.model, client)

    def model_endpoint_id(self, name: str, client: ModelClient) -> str:
        m = self.cfg.models[name]
        if m.provider != "local":
            return redact_url(client.endpoint_url) + endpoint_scope(m)  # credentials never reach the cache
        return "local|" + self.local_spec(name).cache_identity()

    # -- the plan ------------------------------------------------------------------------------------------
    async def build(self, variants: list[VariantConfig], items: list[EvalItem]) -> None:
        """Start what is needed, then give every variant a client, a price and its prepared prompts."""
        skipped = self.not_yet_trained(variants)
        self.start_local(variants, skipped)
        rag_index = None
        if any(v.kind == "rag" for v in variants if v.name not in skipped):
            rag_index = self.build_rag()
        clients = self._clients(variants, skipped)
        probes = {name: await c.probe() for name, c in clients.items()}
        for plan in self.variants.values():
            if plan.client is not None and probes.get(plan.variant.model):
                plan.skipped = probes[plan.variant.model]
        seed = self.cfg.run.seed or 0
        t_prepare = time.perf_counter()
        vectors = None
        for plan in self.variants.values():
            if plan.skipped:
                continue
            m = self.cfg.models[plan.variant.model]
            try:
                if needs_query_vectors(plan.variant):
                    vectors = vectors or self.vector_cache()
                    plan.preparer = batch_preparer(plan.variant, self.evalset, system_role=m.effective_system_role,
                                                   rag_index=rag_index, keep_leaked=self.cfg.run.keep_leaked,
                                                   embed_fn=vectors.embed)
                else:
                    plan.prepared = prepare(plan.variant, self.evalset, items, system_role=m.effective_system_role,
                                            seed=seed, rag_index=rag_index, keep_leaked=self.cfg.run.keep_leaked)
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
        if streamed:
            texts = query_texts(self.evalset, items)
            if any(p.variant.kind == "few_shot" for p in streamed):
                texts += query_texts(self.evalset, self.evalset.train)
            if vectors.missing(texts):
                from harness.retrieval.embeddings import load_model

                load_model()  # start-up, like the index: the stream embeds what is missing as the calls go
        await self.build_judge(clients)

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
                                               api_key_for(m), self.evalset.schema, headers=header_values(m))
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
                "adapter": adapter_record(m.lora) if m.provider == "local" else None,
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
        if self.local_server is not None:
            self.local_server.stop()
            self.local_server = None
