"""Planning: everything that can fail before the first call, done before the first call.

Keys, prices, the embedded server, the RAG index, few-shot pools and every rendered prompt are settled here,
so a run that is going to stop on a config problem stops before it spends money, and execution only calls.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import RunConfig, VariantConfig, api_key_for
from harness.data.evalset import EvalSet
from harness.errors import ConfigError
from harness.models import pricing
from harness.models.client import ModelClient
from harness.prompts.variants import Prepared, prepare, stratified_examples
from harness.records import EvalItem
from harness.runner import cache as response_cache


@dataclass
class VariantPlan:
    """One variant, ready to call: its client, price, stop sequences and the prepared prompt of every item."""

    variant: VariantConfig
    client: ModelClient | None = None
    price: pricing.Price | None = None
    prepared: dict[str, Prepared] = field(default_factory=dict)
    skipped: str | None = None
    stop: list[str] = field(default_factory=list)
    endpoint_id: str = ""  # what identifies the answering model in the response cache


def resolve_model_id(cfg: RunConfig, name: str) -> str:
    """The id the endpoint answers to: `model`, else the content of `model_file`, else (local) the config name."""
    m = cfg.models[name]
    if m.model:
        return m.model
    if m.model_file is not None and m.model_file.exists():
        return m.model_file.read_text("utf-8").strip()
    return name


def few_shot_pool(cfg: RunConfig, evalset: EvalSet, variants: list[VariantConfig]) -> set[str]:
    """The training items any few-shot variant may show the model (checked for leakage)."""
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
    from harness.data.leakage import check_leakage, summarize_findings

    return summarize_findings(check_leakage(evalset), evalset, few_shot_pool(cfg, evalset, variants))


class Plan:
    """Builds one VariantPlan per variant and owns what planning started (the embedded server, clients)."""

    def __init__(self, cfg: RunConfig, evalset: EvalSet, *, run_dir: Path, config_path: str | None,
                 manifest: dict[str, Any], allow_unpriced: bool = False, progress: bool = True):
        self.cfg = cfg
        self.evalset = evalset
        self.run_dir = run_dir
        self.config_path = config_path
        self.manifest = manifest
        self.allow_unpriced = allow_unpriced
        self.progress = progress
        self.prices = pricing.PriceTable.load(cfg.pricing)
        self.variants: dict[str, VariantPlan] = {}
        self.local_server: Any = None

    def model_id(self, name: str) -> str:
        return resolve_model_id(self.cfg, name)

    # -- checks that stop the run (exit code 2) ------------------------------------------------------------
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
        """Config problems that must stop the run before the first paid call."""
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
            if not price.known and not self.allow_unpriced:
                raise ConfigError(
                    f"models.{v.model}: no price for model {model_id!r}; add it to a pricing file "
                    f"(`pricing:` in the config), set `price:` on the model, or pass --allow-unpriced "
                    f"(its cost is then reported as unknown)"
                )

    # -- what planning starts ------------------------------------------------------------------------------
    def start_local(self, variants: list[VariantConfig], skipped: dict[str, str]) -> None:
        """One embedded server for every local model in use."""
        local_names = sorted({v.model for v in variants
                              if self.cfg.models[v.model].provider == "local" and v.name not in skipped})
        if not local_names:
            return
        from harness.models import local

        specs = []
        for name in local_names:
            m = self.cfg.models[name]
            gguf = m.gguf or local.ensure_gguf()
            specs.append(local.LocalModelSpec(alias=self.model_id(name), gguf=gguf, lora=m.lora))
        server = local.LocalServer(specs, log_path=self.run_dir / "local-server.log")
        server.start()
        self.local_server = server

    def base_url(self, name: str) -> str | None:
        m = self.cfg.models[name]
        if m.provider == "local":
            return self.local_server.base_url if self.local_server else None
        return m.base_url

    def build_rag(self) -> Any:
        from harness.retrieval.index import RagIndex

        index_dir = self.cfg.rag.index_dir or (response_cache.cache_dir() / "chroma")
        t0 = time.perf_counter()
        index = RagIndex.build(self.evalset.docs, index_dir, self.evalset.name,
                               max_chars=self.cfg.rag.chunk_chars, overlap=self.cfg.rag.chunk_overlap,
                               show_progress=self.progress)
        self.manifest["rag"] = {"index_dir": str(index_dir), "chunks": index.n_chunks, "reused": index.reused,
                                "build_s": round(time.perf_counter() - t0, 3), "docs": len(self.evalset.docs)}
        return index

    def endpoint_id(self, v: VariantConfig, client: ModelClient) -> str:
        """What identifies the answering model in the cache. The embedded server listens on a new port
        each run, so local models are keyed by their files instead (a retrained adapter is a new model)."""
        m = self.cfg.models[v.model]
        if m.provider != "local":
            return client.base_url or "openai"
        parts = ["local"]
        for f in (m.gguf, m.lora):
            if f is not None and f.exists():
                st = f.stat()
                parts.append(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}")
        if m.gguf is None:
            parts.append("embedded-gemma-3-270m")
        return "|".join(parts)

    # -- the plan ------------------------------------------------------------------------------------------
    async def build(self, variants: list[VariantConfig], items: list[EvalItem]) -> None:
        """Start what is needed, then give every variant a client, a price and its prepared prompts."""
        skipped = self.not_yet_trained(variants)
        self.start_local(variants, skipped)
        rag_index = None
        if any(v.kind == "rag" for v in variants if v.name not in skipped):
            if not self.evalset.docs:
                for v in variants:
                    if v.kind == "rag":
                        skipped[v.name] = f"the eval set has no docs/ or docs.jsonl under {self.evalset.path}"
            else:
                rag_index = self.build_rag()
        clients = self._clients(variants, skipped)
        probes = {name: await c.probe() for name, c in clients.items()}
        for plan in self.variants.values():
            if plan.client is not None and probes.get(plan.variant.model):
                plan.skipped = probes[plan.variant.model]
        seed = self.cfg.run.seed or 0
        for plan in self.variants.values():
            if plan.skipped:
                continue
            m = self.cfg.models[plan.variant.model]
            try:
                plan.prepared = prepare(plan.variant, self.evalset, items, system_role=m.effective_system_role,
                                        seed=seed, rag_index=rag_index)
            except ValueError as exc:
                plan.skipped = str(exc)

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
                                               api_key_for(m), self.evalset.schema)
            plan.client = clients[v.model]
            plan.price = self.prices.for_model(m, plan.client.model_id)
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
                "structured_output": m.effective_structured_output,
                "system_role": m.effective_system_role,
                "price": pricing.describe(p.price) if p.price else None,
                "price_per_hour": m.price_per_hour,
                "skipped": p.skipped,
                "settings": p.variant.model_dump(mode="json"),
            }
        return out

    async def aclose_clients(self) -> None:
        seen: set[int] = set()
        for plan in self.variants.values():
            if plan.client is not None and id(plan.client) not in seen:
                seen.add(id(plan.client))
                with contextlib.suppress(Exception):
                    await plan.client.aclose()

    def stop_local(self) -> None:
        if self.local_server is not None:
            self.local_server.stop()
            self.local_server = None
