"""One planned variant, and the facts about a model that planning settles: the id it answers to, what
identifies its endpoint in the cache, and how its local adapter was trained."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import ModelConfig, RunConfig, VariantConfig
from harness.models import pricing
from harness.models.client import ModelClient
from harness.models.providers import provider_for
from harness.prompts.variants import BatchPreparer, Prepared


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
    # Variants whose prompts need each item's embedding (few-shot similar, RAG) are prepared batch by batch
    # while calls are in flight (harness.runner.prompt_stream): `prepared` fills up as the stream goes.
    preparer: BatchPreparer | None = None
    stream: Any = None  # the PromptStream this variant's prompts come from
    own_vectors: bool = False  # its preparer embeds the queries itself (rag.embedding): no shared MiniLM vectors


def resolve_model_id(cfg: RunConfig, name: str) -> str:
    """The id the endpoint answers to (Provider.model_id: `model`, else the content of `model_file`, else the
    config name; an Azure deployment's name)."""
    return provider_for(cfg.models[name]).model_id(name)


def endpoint_scope(m: ModelConfig) -> str:
    """What besides the URL tells endpoints apart in the cache key: the provider's scope (the Azure API version),
    and the *names* of the headers sent (a gateway may route on them); never their values, so a rotated key
    still hits."""
    scope = provider_for(m).cache_scope()
    if m.headers:
        scope += "|headers=" + ",".join(sorted(h.lower() for h in m.headers))
    return scope


def adapter_record(lora: Path | None) -> dict[str, Any] | None:
    """How a local LoRA adapter was trained, from the `<adapter>.json` written beside it: the measured
    training time and the steps and epochs actually run, so the run prices training honestly."""
    if lora is None:
        return None
    meta_path = lora.with_name(lora.name + ".json")
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
    except (OSError, ValueError):
        return {"path": str(lora)}
    settings = meta.get("settings") or {}
    steps, batch, n = settings.get("steps"), settings.get("batch_size"), meta.get("train_items")
    return {"path": str(lora), "train_seconds": meta.get("train_seconds"), "steps": steps, "batch_size": batch,
            "train_items": n, "epochs": round(steps * batch / n, 2) if steps and batch and n else None,
            "created_at": meta.get("created_at")}
