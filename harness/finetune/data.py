"""Which items a fine-tune may learn from, and for which variant: the train split, never the held-out one.

Train items that repeat a test item (same id, or a test item's input inside theirs, compared after
`harness.data.text.normalise`) are dropped before writing, and the written file is checked again by
`assert_no_test_items`, so the check covers what would really be uploaded or trained on. Train items the
leakage check (`harness.data.leakage`) finds nearly the same as a test item are dropped too, unless the user
keeps them (`--keep-leaked`, `run.keep_leaked: true`).
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness import variant_kinds
from harness.config import RunConfig, VariantConfig
from harness.data.evalset import EvalSet
from harness.data.leakage import describe_pairs, leaked_train_items
from harness.data.text import normalise
from harness.errors import HarnessError
from harness.models.providers import provider_class
from harness.records import EvalItem, Message

Want = Literal["remote", "local"]

NO_FINE_TUNED_VARIANT = (
    "the config has no fine_tuned variant; add one, e.g. under variants: "
    "`- {name: fine-tuned, kind: fine_tuned, model: my-ft}` with models.my-ft.model_file "
    "(OpenAI) or models.my-ft.lora (provider: local)"
)


# -- which variant --------------------------------------------------------------------------------------------


def pick_variant(cfg: RunConfig, name: str | None = None, want: Want | None = None) -> VariantConfig:
    """The fine-tuned variant to train for: --variant, else `finetune.variant`, else the first fine_tuned
    variant on the wanted kind of model (OpenAI jobs need a remote one, local LoRA a `provider: local` one)."""
    chosen = name or cfg.finetune.variant
    v = _named_variant(cfg, chosen) if chosen else _default_variant(cfg, want)
    provider = cfg.models[v.model].provider
    trained_by = _trained_by(cfg, v)
    if want == "local" and trained_by != "local" and not served_at_url(cfg, v):
        raise HarnessError(f"variant {v.name!r} uses model {v.model!r} (provider {provider}); `finetune local` "
                           f"trains a LoRA for a provider: local model; use `harness finetune openai` instead")
    if want == "remote" and trained_by == "local":
        raise HarnessError(f"variant {v.name!r} uses a local model ({v.model!r}); `finetune openai` needs an OpenAI "
                           f"model; use `harness finetune local` instead")
    return v


def _named_variant(cfg: RunConfig, chosen: str) -> VariantConfig:
    try:
        v = cfg.variant(chosen)
    except KeyError:
        known = ", ".join(x.name for x in cfg.variants)
        raise HarnessError(f"variant {chosen!r} is not in the config (variants: {known})") from None
    if not variant_kinds.kind_class(v.kind).trains:
        raise HarnessError(f"variant {chosen!r} is kind {v.kind}; training data is built for a fine_tuned variant")
    return v


def _default_variant(cfg: RunConfig, want: Want | None) -> VariantConfig:
    ft = [v for v in cfg.variants if variant_kinds.kind_class(v.kind).trains]
    if not ft:
        raise HarnessError(NO_FINE_TUNED_VARIANT)
    if want is not None:
        matching = [v for v in ft if _trained_by(cfg, v) == want]
        if want == "local" and not matching:  # the embedded model's LoRA, served by vLLM as its PEFT copy
            matching = [v for v in ft if served_at_url(cfg, v)]
        return matching[0] if matching else ft[0]
    remote = [v for v in ft if _trained_by(cfg, v) == "remote"]
    return (remote or ft)[0]


def served_at_url(cfg: RunConfig, v: VariantConfig) -> bool:
    """The variant's model is asked at a URL of its own (vLLM): `finetune local` can train the LoRA it serves."""
    return bool(cfg.models[v.model].base_url)


def _trained_by(cfg: RunConfig, v: VariantConfig) -> str:
    """Which `harness finetune` trains the variant's model: "remote" (openai) or "local" (its provider's)."""
    return provider_class(cfg.models[v.model].provider).fine_tune_with


# -- which items ----------------------------------------------------------------------------------------------


@dataclass
class TrainingSplit:
    train: list[EvalItem]
    validation: list[EvalItem]
    # train item id -> the test item id it repeats (dropped, so the held-out split stays held out)
    excluded: dict[str, str] = field(default_factory=dict)
    # train item id -> the test item it nearly repeats (leakage check): dropped unless keep_leaked
    leaked: dict[str, str] = field(default_factory=dict)
    keep_leaked: bool = False


def _test_texts(evalset: EvalSet) -> list[tuple[str, str]]:
    return [(t.id, normalise(evalset.input_words(t))) for t in evalset.test]


def _repeated_test_item(text: str, test_texts: list[tuple[str, str]]) -> str | None:
    """The id of the first test item whose normalised input sits inside `text` (already normalised)."""
    return next((tid for tid, tt in test_texts if tt and tt in text), None)


def training_items(evalset: EvalSet, *, seed: int, validation_share: float = 0.0,
                   max_items: int | None = None, keep_leaked: bool = False) -> TrainingSplit:
    """The train split minus anything that repeats a test item (and, unless `keep_leaked`, anything the leakage
    check finds nearly the same as one), optionally sampled and split off a validation share; deterministic
    per seed so a re-run trains on the same data."""
    if not evalset.train:
        raise HarnessError(f"{evalset.path}: no train.jsonl items; fine-tuning data comes from the train split")
    test_ids = {t.id for t in evalset.test}
    test_texts = _test_texts(evalset)
    near = leaked_train_items(evalset)
    excluded: dict[str, str] = {}
    leaked: dict[str, str] = {}
    kept: list[EvalItem] = []
    for item in evalset.train:
        hit = item.id if item.id in test_ids else _repeated_test_item(normalise(evalset.input_words(item)),
                                                                       test_texts)
        if hit is not None:
            excluded[item.id] = hit
            continue
        if item.id in near:
            leaked[item.id] = near[item.id]
            if not keep_leaked:
                continue
        kept.append(item)
    rng = random.Random(seed)
    if max_items is not None and len(kept) > max_items:
        kept = sorted(rng.sample(kept, max_items), key=lambda i: evalset.train.index(i))
    validation: list[EvalItem] = []
    if validation_share > 0:
        order = list(range(len(kept)))
        rng.shuffle(order)
        n_val = max(1, round(len(kept) * validation_share))
        val_idx = set(order[:n_val])
        validation = [it for i, it in enumerate(kept) if i in val_idx]
        kept = [it for i, it in enumerate(kept) if i not in val_idx]
    return TrainingSplit(kept, validation, excluded, leaked, keep_leaked)


def assert_no_test_items(evalset: EvalSet, ids: list[str], path: Path) -> None:
    """The guard on the written file: no test id among the items, no test input text in any line.

    It re-reads the file rather than trusting the in-memory list, so it checks what would be uploaded.
    """
    test_ids = {t.id for t in evalset.test}
    clash = sorted(set(ids) & test_ids)
    if clash:
        raise HarnessError(f"{path}: held-out test items in the training data: {', '.join(clash[:5])} (not written)")
    test_texts = _test_texts(evalset)
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            try:
                messages = json.loads(line).get("messages", [])
                text = normalise("\n".join(str(m.get("content") or "") for m in messages))
            except (ValueError, AttributeError):
                continue  # validate_training_file reports malformed lines
            hit = _repeated_test_item(text, test_texts)
            if hit is not None:
                raise HarnessError(f"{path}:{lineno}: contains the input of held-out test item {hit!r}; "
                                   f"remove the duplicate from train.jsonl")


def leakage_lines(split: TrainingSplit) -> list[str]:
    """What was done with train items that nearly repeat a test item: at most one line."""
    if not split.leaked:
        return []
    n, pairs = len(split.leaked), describe_pairs(split.leaked, 8)
    if split.keep_leaked:
        return [f"leakage     kept {n} train item(s) that nearly repeat a test item (--keep-leaked / "
                f"run.keep_leaked): {pairs}; the fine-tuned variant's scores on those test items may be inflated"]
    return [f"leakage     left out {n} train item(s) that nearly repeat a test item (leakage check): {pairs}; "
            f"pass --keep-leaked (or set run.keep_leaked: true) to keep them"]


# -- the file -------------------------------------------------------------------------------------------------


def write_jsonl(path: Path, examples: list[list[Message]], tools: list[dict[str, Any]] | None = None) -> None:
    """One `{"messages": [...]}` per line (with the task's `tools` on each line when it declares any, as OpenAI's
    tool-calling training format wants), written to a temporary file and moved into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    extra = {"tools": tools} if tools else {}
    with tmp.open("w", encoding="utf-8") as fh:
        for messages in examples:
            fh.write(json.dumps({"messages": messages, **extra}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
