"""How an item becomes messages. One renderer serves evaluation and fine-tuning export, so they never drift."""

from __future__ import annotations

import json
import random
import string
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.config import VariantConfig
from harness.data.evalset import EvalSet
from harness.records import EvalItem, Message

if TYPE_CHECKING:
    import numpy as np

    from harness.retrieval.index import RagIndex

EmbedFn = Callable[[Sequence[str]], "np.ndarray"]


@dataclass(frozen=True)
class PromptSpec:
    """A variant's prompt overrides (VariantConfig `instructions`/`instructions_file`, `input_template`,
    `system`); what is not overridden comes from task.yaml. The same spec renders the variant's eval prompts
    and, for a fine-tuned variant, its training examples."""

    instructions: str | None = None
    input_template: str | None = None
    system: str | None = None


def prompt_of(variant: VariantConfig | dict[str, Any] | None) -> PromptSpec | None:
    """The overrides of a variant (or of its settings as saved in a run manifest); None when it has none."""
    if variant is None:
        return None
    get = variant.get if isinstance(variant, dict) else lambda k: getattr(variant, k, None)
    spec = PromptSpec(get("instructions"), get("input_template"), get("system"))
    return spec if spec != PromptSpec() else None


def template_problem(template: str, values: dict[str, Any]) -> str | None:
    """Why `template` cannot be filled from `values`: the first placeholder that fails and why, or None."""
    try:
        template.format_map(values)
        return None
    except (KeyError, IndexError, AttributeError, ValueError, TypeError):
        pass
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        field = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        try:
            field.format_map(values)
        except KeyError as exc:
            return f"{field}: the input has no field {exc.args[0]!r}"
        except (IndexError, AttributeError, ValueError, TypeError) as exc:
            return f"{field}: {exc}"
    return "the template cannot be filled"


def _unfillable(template: str, evalset: EvalSet) -> str | None:
    for split, items in (("test", evalset.test), ("train", evalset.train)):
        for item in items:
            problem = template_problem(template, item.input)
            if problem:
                return f"cannot be filled for item {item.id!r} of {split}.jsonl: {problem}"
    return None


def check_prompt(variant: VariantConfig, evalset: EvalSet) -> str | None:
    """Why the variant's prompt cannot be rendered for every item (test and train), naming the item and the
    placeholder; None when it can. The task's own input_template is checked when the variant has none."""
    template = variant.input_template
    if template is None:
        problem = _unfillable(evalset.task.input_template, evalset)
        return (f"variants: {variant.name}: the task's input_template ({evalset.path / 'task.yaml'}) {problem}"
                if problem else None)
    from harness.data.evalset import template_fields

    try:
        keys = template_fields(template)
    except ValueError as exc:
        return f"variants: {variant.name}: input_template: {exc} (use {{field}} placeholders; double braces for literal ones)"
    for item in [*evalset.test, *evalset.train]:
        absent = [k for k in keys if k not in item.input]
        if absent:
            return (f"variants: {variant.name}: input_template uses {', '.join(absent)}, which item {item.id!r} "
                    f"of {evalset.path.name} does not have in its input")
    problem = _unfillable(template, evalset)
    return f"variants: {variant.name}: input_template {problem}" if problem else None


def instructions_text(evalset: EvalSet, prompt: PromptSpec | None = None) -> str:
    """The system text: the variant's `system` preamble (if any), its instructions (or the task's) and, for a
    JSON task, the schema the answer must match. A free-text task's answer is the text itself, so no format
    sentence is added."""
    cache: dict[PromptSpec | None, str] = evalset.__dict__.setdefault("_instructions_texts", {})
    cached = cache.get(prompt)
    if cached is None:
        text = (prompt.instructions if prompt and prompt.instructions else evalset.instructions).strip()
        if evalset.schema is not None:
            schema = json.dumps(evalset.schema, separators=(",", ":"), ensure_ascii=False)
            text = f"{text}\n\nAnswer with only a JSON object that matches this JSON Schema:\n{schema}"
        if prompt and prompt.system:
            text = f"{prompt.system.strip()}\n\n{text}"
        cache[prompt] = cached = text
    return cached


def answer_text(evalset: EvalSet, expected: Any) -> str:
    """The assistant turn for an example: exactly what the model should write — compact JSON for a JSON
    task, the expected text (the first acceptable one of a list) for a free-text task."""
    if evalset.schema is None:
        return expected if isinstance(expected, str) else str(expected[0]) if isinstance(expected, list) else ""
    return json.dumps(expected, ensure_ascii=False)


def input_text(evalset: EvalSet, item_input: dict[str, Any], prompt: PromptSpec | None = None) -> str:
    template = prompt.input_template if prompt and prompt.input_template else evalset.task.input_template
    return template.format_map(item_input)


def passages_block(passages: list[Any]) -> str:
    parts = [f"[{p.doc_id}]\n{p.text.strip()}" for p in passages]
    return "Reference documents:\n\n" + "\n\n".join(parts)


def render_prompt(
    evalset: EvalSet,
    item_input: dict[str, Any],
    *,
    examples: list[EvalItem] | tuple[EvalItem, ...] = (),
    passages: list[Any] | tuple[Any, ...] = (),
    system_role: bool = True,
    prompt: PromptSpec | None = None,
) -> list[Message]:
    """The one prompt renderer. `system_role=False` folds the instructions into the first user turn,
    for chat formats (gemma) that drop system messages. `prompt` holds the variant's overrides."""
    instructions = instructions_text(evalset, prompt)
    messages: list[Message] = []
    for ex in examples:
        messages.append({"role": "user", "content": input_text(evalset, ex.input, prompt)})
        messages.append({"role": "assistant", "content": answer_text(evalset, ex.expected)})
    user = input_text(evalset, item_input, prompt)
    if passages:
        user = f"{passages_block(list(passages))}\n\n---\n\n{user}"
    messages.append({"role": "user", "content": user})
    if system_role:
        return [{"role": "system", "content": instructions}, *messages]
    first = messages[0]
    messages[0] = {"role": "user", "content": f"{instructions}\n\n{first['content']}"}
    return messages


def render_training_example(evalset: EvalSet, item: EvalItem, *, system_role: bool = True,
                            prompt: PromptSpec | None = None) -> list[Message]:
    """A fine-tuning example: the fine-tuned variant's prompt (its overrides included) plus the expected
    answer."""
    return [*render_prompt(evalset, item.input, system_role=system_role, prompt=prompt),
            {"role": "assistant", "content": answer_text(evalset, item.expected)}]


@dataclass
class Prepared:
    messages: list[Message]
    retrieved_doc_ids: list[str] | None = None
    shot_ids: list[str] | None = None


def example_pool(evalset: EvalSet, *, keep_leaked: bool = False) -> list[EvalItem]:
    """The training items a few-shot prompt may show: the train split without the items that repeat or nearly
    repeat a test item (harness.data.leakage), unless `keep_leaked` (run.keep_leaked: true)."""
    if keep_leaked:
        return list(evalset.train)
    from harness.data.leakage import leaked_train_items

    leaked = leaked_train_items(evalset)
    return [i for i in evalset.train if i.id not in leaked]


def stratified_examples(evalset: EvalSet, k: int, seed: int, pool: list[EvalItem] | None = None) -> list[EvalItem]:
    """k examples spread over labels round-robin, so rare labels are shown too; deterministic per seed.
    `pool` defaults to the whole train split."""
    groups: dict[str, list[EvalItem]] = defaultdict(list)
    for item in evalset.train if pool is None else pool:
        groups[json.dumps(evalset.label_of(item), sort_keys=True)].append(item)
    rng = random.Random(seed)
    for g in groups.values():
        rng.shuffle(g)
    order = sorted(groups)
    rng.shuffle(order)
    picked: list[EvalItem] = []
    depth = 0
    while len(picked) < k and any(depth < len(groups[o]) for o in order):
        for label in order:
            if depth < len(groups[label]) and len(picked) < k:
                picked.append(groups[label][depth])
        depth += 1
    return picked


def similar_examples(evalset: EvalSet, items: list[EvalItem], k: int,
                     pool: list[EvalItem] | None = None, *, embed_fn: EmbedFn | None = None,
                     query_vecs: np.ndarray | None = None,
                     pool_vecs: np.ndarray | None = None) -> dict[str, list[EvalItem]]:
    """Per item, the k most similar training items (of `pool`, default the train split) by embedding, least
    similar first (closest sits next to the question). Vectors already at hand are reused."""
    from harness.retrieval.metrics import nearest_neighbours

    embed_fn = embed_fn or _embed
    pool = evalset.train if pool is None else pool
    if pool_vecs is None:
        pool_vecs = embed_fn([evalset.render_input(t) for t in pool])
    if query_vecs is None:
        query_vecs = embed_fn(query_texts(evalset, items))
    idx = nearest_neighbours(query_vecs, pool_vecs, min(k, len(pool)))
    return {item.id: [pool[j] for j in reversed(list(row))] for item, row in zip(items, idx, strict=True)}


def _embed(texts: Sequence[str]) -> np.ndarray:
    from harness.retrieval.embeddings import embed

    return embed(texts)


def query_texts(evalset: EvalSet, items: list[EvalItem]) -> list[str]:
    """What similarity selection and retrieval embed for each item: its rendered input (one text serves both)."""
    return [evalset.render_input(i) for i in items]


def needs_query_vectors(variant: VariantConfig) -> bool:
    """Variants whose prompt depends on each item's embedding, so it is built in batches as the run goes."""
    return variant.kind == "rag" or (variant.kind == "few_shot" and variant.selection == "similar")


def _few_shot_pool(evalset: EvalSet, keep_leaked: bool) -> list[EvalItem]:
    if not evalset.train:
        raise ValueError(f"few_shot needs train.jsonl in the eval set (the example pool); add it under "
                         f"{evalset.path}, or leave this variant out (--variants)")
    pool = example_pool(evalset, keep_leaked=keep_leaked)
    if not pool:
        raise ValueError(f"few_shot: every item of train.jsonl repeats or nearly repeats a test item, so none "
                         f"is left to show as an example; add other training items, or set "
                         f"run.keep_leaked: true to use them anyway ({evalset.path / 'train.jsonl'})")
    return pool


def few_shot_pool_problem(evalset: EvalSet, *, keep_leaked: bool) -> str | None:
    """Why a few-shot variant has no examples to show (checked before the first call), or None."""
    try:
        _few_shot_pool(evalset, keep_leaked)
    except ValueError as exc:
        return str(exc)
    return None


BatchPreparer = Callable[[list[EvalItem], "np.ndarray"], dict[str, Prepared]]


def batch_preparer(variant: VariantConfig, evalset: EvalSet, *, system_role: bool,
                   rag_index: RagIndex | None = None, keep_leaked: bool = False,
                   embed_fn: EmbedFn | None = None) -> BatchPreparer:
    """For a variant that needs_query_vectors: what is fixed is checked now (the pool, the index), raising
    ValueError as prepare() would; the returned function prepares one batch of items from their query vectors
    (see query_texts), so the runner can prepare batch after batch while calls are in flight. The pool is
    embedded with the first batch."""
    prompt = prompt_of(variant)
    if variant.kind == "few_shot":
        pool = _few_shot_pool(evalset, keep_leaked)
        k = variant.shots
        pool_vecs: list[np.ndarray] = []  # embedded with the first batch, off the calls' path

        def few_shot_batch(items: list[EvalItem], vecs: np.ndarray) -> dict[str, Prepared]:
            if not pool_vecs:
                pool_vecs.append((embed_fn or _embed)(query_texts(evalset, pool)))
            per_item = similar_examples(evalset, items, k, pool, query_vecs=vecs, pool_vecs=pool_vecs[0])
            return {i.id: Prepared(render_prompt(evalset, i.input, examples=per_item[i.id], system_role=system_role,
                                                 prompt=prompt),
                                   shot_ids=[e.id for e in per_item[i.id]]) for i in items}

        return few_shot_batch
    if variant.kind == "rag":
        if rag_index is None:
            raise ValueError("rag needs docs/ (or docs.jsonl) in the eval set")
        from harness.retrieval.index import retrieved_doc_ids

        def rag_batch(items: list[EvalItem], vecs: np.ndarray) -> dict[str, Prepared]:
            results = rag_index.query_many(query_texts(evalset, items), variant.top_k, vectors=vecs)
            return {i.id: Prepared(render_prompt(evalset, i.input, passages=passages, system_role=system_role,
                                                 prompt=prompt),
                                   retrieved_doc_ids=retrieved_doc_ids(passages))
                    for i, passages in zip(items, results, strict=True)}

        return rag_batch
    raise ValueError(f"{variant.name}: a {variant.kind} variant is prepared up front, not in batches")


def prepare(
    variant: VariantConfig,
    evalset: EvalSet,
    items: list[EvalItem],
    *,
    system_role: bool,
    seed: int,
    rag_index: RagIndex | None = None,
    keep_leaked: bool = False,
    embed_fn: EmbedFn | None = None,
) -> dict[str, Prepared]:
    """Build every item's messages for one variant up front (retrieval and similarity are batched).
    Few-shot examples never include train items that repeat a test item unless `keep_leaked`. The runner
    prepares the variants that needs_query_vectors in batches instead (batch_preparer)."""
    if needs_query_vectors(variant):
        run_batch = batch_preparer(variant, evalset, system_role=system_role, rag_index=rag_index,
                                   keep_leaked=keep_leaked, embed_fn=embed_fn)
        return run_batch(items, (embed_fn or _embed)(query_texts(evalset, items))) if items else {}
    prompt = prompt_of(variant)
    if variant.kind in ("baseline", "fine_tuned"):
        return {i.id: Prepared(render_prompt(evalset, i.input, system_role=system_role, prompt=prompt)) for i in items}
    if variant.kind == "few_shot":
        pool = _few_shot_pool(evalset, keep_leaked)
        k = variant.shots
        if variant.selection == "first":
            fixed = pool[:k]
            per_item = {i.id: fixed for i in items}
        elif variant.selection == "stratified":
            fixed = stratified_examples(evalset, k, seed, pool)
            per_item = {i.id: fixed for i in items}
        else:  # similar: batch_preparer above
            raise ValueError(f"unknown few-shot selection {variant.selection}")
        return {
            i.id: Prepared(
                render_prompt(evalset, i.input, examples=per_item[i.id], system_role=system_role,
                              prompt=prompt),
                shot_ids=[e.id for e in per_item[i.id]],
            )
            for i in items
        }
    raise ValueError(f"unknown variant kind {variant.kind}")
