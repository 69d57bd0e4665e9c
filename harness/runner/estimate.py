"""What a run of n items would cost and take, before any call: for `harness plan`.

Prices come from the price table exactly as the run resolves them (preflight's model ids, Batch API rates when
`run.mode: batch`). Prompt tokens: measured in a pilot run when one is given (its mean prompt tokens per call),
else estimated from every test item's prompt rendered by the variant's own kind, counted as the rate limiter
counts them (harness.models.ratelimit.estimate_tokens: one token per 4 characters). Prompts that depend on
embeddings (RAG passages, similar few-shot examples) are rendered with the `top_k` longest chunks of the docs or
the `shots` longest examples of the pool: an upper bound, without loading the embedding model. Output tokens:
the pilot's mean completion tokens, else `max_tokens` (an upper bound). A self-hosted model with
`price_per_hour` costs the pilot's mean latency x that price per call (as the report costs busy time), and is
unknown without a pilot. Every figure says which it used.

Time: the slowest of the run's concurrency (calls x the pilot's mean latency / run.concurrency, when a pilot
gives latencies) and each model's requests/tokens-per-minute limits (at the limiter's HEADROOM).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.config import RunConfig, VariantConfig
from harness.data.evalset import EvalSet
from harness.models import pricing
from harness.models.ratelimit import HEADROOM, MINUTE_S, estimate_tokens
from harness.prompts.kinds.base import PrepareContext, VariantKind, kind_of
from harness.records import EvalItem, Message, Record
from harness.runner.variant_plan import resolve_model_id


@dataclass
class CallEstimate:
    """One variant's average call."""

    variant: str
    model: str
    model_id: str
    price: pricing.Price
    prompt_tokens: float
    prompt_basis: str
    completion_tokens: float
    completion_basis: str
    limiter_tokens: float  # what one call counts against tokens_per_minute (prompt + max_tokens)
    latency_s: float | None  # the pilot's mean, when it has one
    price_per_hour: float | None = None  # a self-hosted model's: busy time x this, as the report costs it

    def cost_per_call(self) -> float | None:
        if self.price.basis == "self-hosted":
            if self.price_per_hour is None or self.latency_s is None:
                return None
            return self.latency_s / 3600 * self.price_per_hour
        if not self.price.known:
            return None
        return (self.prompt_tokens * self.price.input + self.completion_tokens * self.price.output) / 1_000_000

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["price"] = pricing.describe(self.price)
        out["cost_per_call_usd"] = self.cost_per_call()
        return out


@dataclass
class PilotCalls:
    """A pilot's answered calls of one variant: mean tokens and latency."""

    calls: int
    prompt_tokens: float | None
    completion_tokens: float | None
    latency_s: float | None


def pilot_calls(records: list[Record]) -> dict[str, PilotCalls]:
    """Per variant, from a pilot's latest records: answered calls only (an error has no usage to average)."""
    out: dict[str, PilotCalls] = {}
    for name in dict.fromkeys(r.variant for r in records):
        ok = [r for r in records if r.variant == name and r.error is None]
        used = [r.usage for r in ok if r.usage is not None and r.usage.prompt_tokens > 0]
        lat = [r.latency_s for r in ok if r.latency_s is not None and not r.cache_hit]
        out[name] = PilotCalls(
            len(ok),
            sum(u.prompt_tokens for u in used) / len(used) if used else None,
            sum(u.completion_tokens for u in used) / len(used) if used else None,
            sum(lat) / len(lat) if lat else None)
    return out


def rendered_messages(cfg: RunConfig, evalset: EvalSet, v: VariantConfig) -> tuple[list[list[Message]], str]:
    """Every test item's messages as the variant's kind renders them, and how (exact, or an upper bound)."""
    kind = kind_of(v)
    ctx = PrepareContext.of_run(cfg, evalset)
    system_role = cfg.models[v.model].effective_system_role
    items = evalset.test
    if not kind.streamed:
        prepared = kind.prepare(ctx, items, system_role=system_role)
        return [prepared[i.id].messages for i in items], "rendered prompts, chars/4"
    return _upper_bound(kind, ctx, items, system_role)


def _upper_bound(kind: VariantKind, ctx: PrepareContext, items: list[EvalItem],
                 system_role: bool) -> tuple[list[list[Message]], str]:
    evalset = ctx.evalset
    top_k, shots = getattr(kind, "top_k", None), getattr(kind, "shots", None)
    if top_k is not None:
        from harness.retrieval.chunks import chunk_doc

        chunks = [c for d in evalset.docs for c in chunk_doc(d, ctx.rag.chunk_chars, ctx.rag.chunk_overlap)]
        longest = sorted(chunks, key=lambda c: -len(c.text))[:top_k]
        msgs = [kind.render(evalset, i.input, passages=longest, system_role=system_role) for i in items]
        return msgs, f"rendered prompts with the {top_k} longest passages (upper bound), chars/4"
    if shots is not None:
        from harness.prompts.kinds.few_shot import example_pool

        pool = example_pool(evalset, keep_leaked=ctx.keep_leaked)
        longest = sorted(pool, key=lambda e: -len(str(e.input)) - len(str(e.expected)))[:shots]
        msgs = [kind.render(evalset, i.input, examples=longest, system_role=system_role) for i in items]
        return msgs, f"rendered prompts with the {shots} longest examples (upper bound), chars/4"
    msgs = [kind.render(evalset, i.input, system_role=system_role) for i in items]
    return msgs, "rendered prompts without what the kind adds per item (lower bound), chars/4"


def call_estimates(cfg: RunConfig, evalset: EvalSet, variants: list[VariantConfig], prices: pricing.PriceTable,
                   pilot: dict[str, PilotCalls] | None = None, pilot_name: str = "pilot") -> list[CallEstimate]:
    """One CallEstimate per variant (variants that would be skipped are left out by the caller)."""
    out = []
    for v in variants:
        m = cfg.models[v.model]
        model_id = resolve_model_id(cfg, v.model)
        price = prices.for_model(m, model_id, batch=cfg.run.mode == "batch")
        max_tokens = v.max_tokens or cfg.run.max_tokens
        msgs, how = rendered_messages(cfg, evalset, v)
        rendered = sum(estimate_tokens({"messages": x}) for x in msgs) / max(len(msgs), 1)
        seen = (pilot or {}).get(v.name)
        if seen is not None and seen.prompt_tokens is not None:
            prompt, prompt_basis = seen.prompt_tokens, f"{pilot_name}: mean of {seen.calls} calls"
        else:
            prompt, prompt_basis = rendered, how
        if seen is not None and seen.completion_tokens is not None:
            completion, completion_basis = seen.completion_tokens, f"{pilot_name}: mean of {seen.calls} calls"
        else:
            completion, completion_basis = float(max_tokens), f"max_tokens {max_tokens} (upper bound)"
        out.append(CallEstimate(v.name, v.model, model_id, price, prompt, prompt_basis, completion, completion_basis,
                                rendered + max_tokens, seen.latency_s if seen else None, m.price_per_hour))
    return out


@dataclass
class RunEstimate:
    items: int
    repeats: int
    calls: int
    cost_usd: float | None  # None when a variant's price is unknown
    unpriced: list[str]
    seconds: float | None
    time_basis: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_estimate(cfg: RunConfig, calls: list[CallEstimate], items: int) -> RunEstimate:
    """Cost and duration of asking `items` items (times run.repeats) of every variant in `calls`."""
    repeats = cfg.run.repeats
    per_variant = items * repeats
    costs = [c.cost_per_call() for c in calls]
    unpriced = [c.variant for c, x in zip(calls, costs, strict=True) if x is None]
    total = None if unpriced else sum(x or 0.0 for x in costs) * per_variant
    seconds, basis = _duration(cfg, calls, per_variant)
    return RunEstimate(items, repeats, per_variant * len(calls), total, unpriced, seconds, basis)


def _duration(cfg: RunConfig, calls: list[CallEstimate], per_variant: int) -> tuple[float | None, str]:
    if cfg.run.mode == "batch":
        return None, "run.mode batch: as long as the provider's batch takes (up to its 24 h window)"
    bounds: list[tuple[float, str]] = []
    if calls and all(c.latency_s is not None for c in calls):
        busy = sum(per_variant * (c.latency_s or 0.0) for c in calls)
        bounds.append((busy / cfg.run.concurrency, f"concurrency {cfg.run.concurrency} x pilot latency"))
    for model in dict.fromkeys(c.model for c in calls):
        m = cfg.models[model]
        mine = [c for c in calls if c.model == model]
        if m.requests_per_minute:
            n = per_variant * len(mine)
            bounds.append((n / (m.requests_per_minute * HEADROOM) * MINUTE_S,
                           f"models.{model}.requests_per_minute {m.requests_per_minute}"))
        if m.tokens_per_minute:
            tokens = per_variant * sum(c.limiter_tokens for c in mine)
            bounds.append((tokens / (m.tokens_per_minute * HEADROOM) * MINUTE_S,
                           f"models.{model}.tokens_per_minute {m.tokens_per_minute}"))
    if not bounds:
        return None, "unknown: no pilot latencies (--from) and no rate limits in the config"
    seconds, why = max(bounds)
    partial = "" if any("latency" in b for _, b in bounds) else " (a lower bound: no pilot latencies)"
    return seconds, f"set by {why}{partial}"
