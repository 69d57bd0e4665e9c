"""What is settled before the first call: which variants are skipped, which problems stop the run, which
only warn. `harness run` (through Plan.check_before_calls) and `harness validate` both ask this one function,
so they cannot disagree on what is an error, a warning or a skipped variant.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

from harness.config import RunConfig, VariantConfig, header_values
from harness.data.evalset import EvalSet
from harness.errors import ConfigError
from harness.models import pricing
from harness.models.lifecycle import lifecycle_of, retirement_warning
from harness.models.providers import provider_for
from harness.prompts.kinds.base import PrepareContext, kind_of
from harness.prompts.variants import check_prompt
from harness.redact import redact_body
from harness.runner.variant_plan import resolve_model_id
from harness.scoring.reference import check_labels
from harness.scoring.task_yaml import scorers_of


@dataclass
class Preflight:
    """errors stop the run (exit 2), warnings are printed and kept, notes are printed (how the run will score),
    skipped variants are left out with the reason and how to fix it; the others still run."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    prices: dict[str, pricing.Price] = field(default_factory=dict)  # variant name -> its price (not skipped)

    def warn(self, text: str | None) -> None:
        if text and text not in self.warnings:
            self.warnings.append(text)


def skipped_before_calls(cfg: RunConfig, evalset: EvalSet, variants: list[VariantConfig],
                         config_path: str | None) -> dict[str, str]:
    """Variants that cannot run with what exists yet (a model not trained, no train split or docs): skipped
    with how to fix it, while the others run."""
    where = config_path or "CONFIG"
    out: dict[str, str] = {}
    for v in variants:
        m = cfg.models[v.model]
        if m.model is None and m.model_file is not None and not m.model_file.exists():
            out[v.name] = (f"no fine-tuned model id in {m.model_file} yet; create it with "
                           f"`harness finetune openai {where}`")
        elif m.lora is not None and not m.lora.exists():  # only a local model takes a lora (the config checks)
            out[v.name] = (f"no fine-tuned adapter at {m.lora} yet; create it with "
                           f"`harness finetune local {where}` and run again")
        elif (reason := kind_of(v).skip_reason(PrepareContext.of_run(cfg, evalset))) is not None:
            out[v.name] = reason  # what the kind needs is missing: no docs, no train split
    return out


def judge_in_use(cfg: RunConfig, evalset: EvalSet) -> bool:
    """A judge model is asked only when the task has a judge scorer and the run config names one."""
    return cfg.judge is not None and any(s.is_async for s in scorers_of(evalset))


def _key_problem(cfg: RunConfig, name: str, what: str) -> str | None:
    problem = provider_for(cfg.models[name]).key_problem(name, os.environ)
    return f"{what}: {problem}" if problem else None


def preflight(cfg: RunConfig, evalset: EvalSet, variants: list[VariantConfig], prices: pricing.PriceTable, *,
              allow_unpriced: bool = False, config_path: str | None = None,
              today: dt.date | None = None, reference: str | None = None) -> Preflight:
    """Every problem a run would stop on before its first paid call, in the order the run meets them.
    `reference`: what the run scores agreement against (`--reference`), else the config's `reference:`."""
    found = Preflight(skipped=skipped_before_calls(cfg, evalset, variants, config_path))
    unlabelled, note = check_labels(evalset, reference or cfg.reference)
    found.errors += [unlabelled] if unlabelled else []
    found.notes += [note] if note else []
    for v in variants:
        if v.name in found.skipped:
            continue
        m = cfg.models[v.model]
        problem = _key_problem(cfg, v.model, f"models.{v.model}")
        if problem and problem not in found.errors:  # one line per model, not per variant on it
            found.errors.append(problem)
        try:
            header_values(m)
        except ConfigError as exc:
            found.errors.append(f"models.{v.model}.{exc}")
        if cfg.run.mode == "batch" and redact_body(m.extra_body) != m.extra_body:
            found.errors.append(f"models.{v.model}.extra_body: run.mode batch writes every request body into the "
                                f"run folder (batch/), so the credential there would be stored; send it as a header "
                                f"(`headers: {{NAME: {{env: VARIABLE}}}}`) or use mode: sync")
        model_id = resolve_model_id(cfg, v.model)
        price = found.prices[v.name] = prices.for_model(m, model_id)
        # (an application under test without a price costs what it reports per call: basis "reported")
        if price.basis == "unknown" and not allow_unpriced:
            which = (f"no row {m.price_as!r} (price_as) in the price table" if m.price_as
                     else prices.unpriced_reason(model_id))
            hint = provider_for(m).unpriced_hint
            hint = f"{hint}, " if hint else ""
            found.errors.append(
                f"models.{v.model}: {which}; {hint}add it to a pricing file "
                f"(`pricing:` in the config), set `price:` (or `price_as:`) on the model, or pass --allow-unpriced "
                f"(its cost is then reported as unknown)")
        found.warn(pricing.stale_warning(price, today))
        if evalset.tools and not provider_for(m).serves_tools:
            found.warn(f"variant {v.name}: provider {m.provider} cannot call tools, so every item that expects a tool "
                       f"call will be wrong; serve the model with tool calling (e.g. vLLM with "
                       f"--enable-auto-tool-choice) as provider openai-compatible")
        if not provider_for(m).self_hosted:  # a self-hosted model has no provider's shutdown day
            found.warn(retirement_warning(lifecycle_of(prices, model_id), today))
    for v in variants:
        problem = check_prompt(v, evalset)
        if problem is not None:
            found.errors.append(f"{config_path or 'config'}: {problem}")
    if judge_in_use(cfg, evalset):
        _check_judge(cfg, prices, found, allow_unpriced, today)
    ctx = PrepareContext.of_run(cfg, evalset)
    if any(kind_of(v).embeds_own_queries(ctx) for v in variants if v.name not in found.skipped):
        _check_embedding(cfg, prices, found, allow_unpriced, today)
    return found


def _check_embedding(cfg: RunConfig, prices: pricing.PriceTable, found: Preflight, allow_unpriced: bool,
                     today: dt.date | None) -> None:
    """rag.embedding's model: its key, headers and price, checked like a variant's (its cost is part of the RAG
    variant's cost per request, so an unpriced one would make that cost unknown)."""
    assert cfg.rag.embedding is not None
    name = cfg.rag.embedding.model
    m = cfg.models[name]
    problem = _key_problem(cfg, name, f"rag.embedding.model {name}")
    if problem:
        found.errors.append(problem)
    try:
        header_values(m)
    except ConfigError as exc:
        found.errors.append(f"models.{name}.{exc}")
    model_id = resolve_model_id(cfg, name)
    price = prices.for_model(m, model_id)
    if not price.known and not allow_unpriced:
        found.errors.append(f"rag.embedding.model {name}: {prices.unpriced_reason(model_id)}; add it to a pricing "
                            f"file, set `price:` (input per 1M tokens, output 0) on the model, or pass "
                            f"--allow-unpriced (the RAG variant's cost is then reported as unknown)")
    found.warn(pricing.stale_warning(price, today))


def _check_judge(cfg: RunConfig, prices: pricing.PriceTable, found: Preflight, allow_unpriced: bool,
                 today: dt.date | None) -> None:
    """The judge model's key and price, checked like a variant's."""
    assert cfg.judge is not None
    name = cfg.judge.model
    problem = _key_problem(cfg, name, f"judge.model {name}")
    if problem:
        found.errors.append(problem)
    model_id = resolve_model_id(cfg, name)
    price = prices.for_model(cfg.models[name], model_id)
    if not price.known and not allow_unpriced:
        found.errors.append(f"judge.model {name}: {prices.unpriced_reason(model_id)}; add it to a pricing file, "
                            f"set `price:` (or `price_as:`) on the model, or pass --allow-unpriced (evaluation cost is then reported "
                            f"as unknown)")
    found.warn(pricing.stale_warning(price, today))
