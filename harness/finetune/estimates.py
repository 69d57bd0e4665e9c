"""Token and cost estimates for a training file, without OpenAI's tokenizer.

tiktoken downloads its BPE file at run time and fails offline, so the harness either calibrates
tokens-per-character from a run's measured `usage`, or falls back to chars/4 plus 4 tokens per message, and
always says which it used. The cost is those tokens x epochs x the base model's training price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import variant_kinds
from harness.errors import HarnessError
from harness.models.providers import provider_class


@dataclass
class TokenEstimator:
    """Estimated tokens of a chat example. `tokens_per_char` set = calibrated from measured usage."""

    tokens_per_char: float | None = None
    per_message: int = 4
    method: str = "chars/4 + 4 per message (rough estimate; OpenAI's tokenizer is not used offline)"

    def count(self, messages: list[Any]) -> int:
        chars = [len(m.get("content") or "") if isinstance(m, dict) and isinstance(m.get("content"), str) else 0
                 for m in messages]
        if self.tokens_per_char is not None:
            return math.ceil(sum(chars) * self.tokens_per_char)
        return sum(math.ceil(c / 4) + self.per_message for c in chars)


def calibrate_from_run(run_dir: Path) -> TokenEstimator:
    """Tokens per character measured on a run's own prompts: sum(prompt_tokens) / sum(message chars).

    The fine-tuned variant's records come first (same prompts as the training data), else the baseline's.
    The ratio includes the per-message overhead, so no extra per-message tokens are added.
    """
    from harness.rundir import RunFolder

    folder = RunFolder(run_dir)
    records = folder.records()
    if not records:
        raise HarnessError(f"--calibrate-from {run_dir}: no records.jsonl with records in it")
    run_cfg = folder.config()
    # Variants whose prompt is the training data's: the trained one first, then the ones that ask without training.
    same_prompt = {v.name: kind.trains for v in run_cfg.variants
                   if (kind := variant_kinds.kind_class(v.kind)).renders_training_prompt}
    for trained in (True, False):
        usable = [r for r in records if same_prompt.get(r.variant) is trained and r.usage is not None
                  and r.usage.prompt_tokens > 0 and r.error is None]
        if not usable:
            continue
        tokens = sum(r.usage.prompt_tokens for r in usable if r.usage is not None)
        chars = sum(len(m.get("content") or "") for r in usable for m in r.request.get("messages", []))
        if chars == 0:
            continue
        models = sorted({r.model for r in usable})
        providers = {run_cfg.models[m].provider for m in models if m in run_cfg.models}
        note = "" if all(provider_class(p).openai_token_counts for p in providers) else (
            "; note: measured on a non-OpenAI model whose tokenizer differs from OpenAI's")
        variant = usable[0].variant
        return TokenEstimator(
            tokens_per_char=tokens / chars, per_message=0,
            method=(f"calibrated from {run_dir} ({variant}, {len(usable)} calls on "
                    f"{', '.join(sorted({r.model_id for r in usable}))}): {tokens / chars:.4f} tokens/char{note}"),
        )
    raise HarnessError(f"--calibrate-from {run_dir}: no successful fine_tuned or baseline records with usage")


def estimator_for(calibrate_from: Path | None) -> TokenEstimator:
    """Calibrated from that run's records when given, else the chars/4 rule."""
    return calibrate_from_run(calibrate_from) if calibrate_from else TokenEstimator()


@dataclass
class CostEstimate:
    tokens: int
    epochs: int
    price_per_1m: float | None
    source: str

    @property
    def usd(self) -> float | None:
        if self.price_per_1m is None:
            return None
        return self.tokens * self.epochs * self.price_per_1m / 1_000_000

    def describe(self) -> str:
        billed = f"{self.tokens:,} tokens x {self.epochs} epochs = {self.tokens * self.epochs:,} training tokens"
        if self.usd is None:
            return f"{billed}; training price unknown ({self.source}); add fine_tuned.training to a pricing file"
        return f"{billed} x ${self.price_per_1m:.2f}/1M = ${self.usd:,.2f} ({self.source})"


def training_price(base_model: str, pricing_path: Path | None) -> tuple[float | None, str]:
    """The price table keeps the training rate under the base model's `fine_tuned.training`; looking up a
    fine-tuned id of that base (`ft:<base>:...`) is how the table resolves fine-tuned rates."""
    from harness.models.pricing import PriceTable

    price = PriceTable.load(pricing_path).lookup(f"ft:{base_model}:training-estimate")
    if not price.known or price.training is None:
        return None, f"no training price for {base_model}"
    return price.training, price.source


def training_cost(tokens: int, epochs: int, base_model: str, pricing_path: Path | None) -> CostEstimate:
    price, source = training_price(base_model, pricing_path)
    return CostEstimate(tokens, epochs, price, source)
