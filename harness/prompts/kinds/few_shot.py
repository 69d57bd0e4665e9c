"""few_shot: `shots` worked examples from the train split before the item, picked `first`, `stratified` (spread
over labels) or `similar` (nearest by embedding, per item: prepared batch by batch while calls are in flight)."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from harness.data.evalset import EvalSet
from harness.prompts.kinds.base import Need, PrepareContext, Resources, VariantKind
from harness.prompts.variants import BatchPreparer, EmbedFn, Prepared, default_embed, query_texts
from harness.records import EvalItem

if TYPE_CHECKING:
    import numpy as np

POOL = "example_pool"


class FewShot(VariantKind):
    name: ClassVar[str] = "few_shot"
    shows_train_items: ClassVar[bool] = True

    shots: int = Field(default=4, ge=0)
    selection: Literal["first", "stratified", "similar"] = "stratified"

    def needs(self, ctx: PrepareContext) -> list[Need]:
        fingerprint = f"{POOL}|{ctx.evalset.content_hash}|keep_leaked={ctx.keep_leaked}"
        return [Need(POOL, fingerprint, lambda c: pool_or_raise(c.evalset, c.keep_leaked))]

    def skip_reason(self, ctx: PrepareContext) -> str | None:
        try:
            pool_or_raise(ctx.evalset, ctx.keep_leaked)
        except ValueError as exc:
            return str(exc)
        return None

    def shown_train_ids(self, ctx: PrepareContext) -> set[str]:
        examples = example_pool(ctx.evalset, keep_leaked=ctx.keep_leaked)
        if self.selection == "first":
            return {i.id for i in examples[: self.shots]}
        if self.selection == "stratified":
            return {i.id for i in stratified_examples(ctx.evalset, self.shots, ctx.seed, examples)}
        return {i.id for i in examples}

    @property
    def streamed(self) -> bool:
        return self.selection == "similar"

    def embedded_texts(self, evalset: EvalSet) -> list[str]:
        return query_texts(evalset, evalset.train) if self.streamed else []

    def prepare(self, ctx: PrepareContext, items: list[EvalItem], *, system_role: bool,
                resources: Resources | None = None, embed_fn: EmbedFn | None = None) -> dict[str, Prepared]:
        if self.streamed:
            return super().prepare(ctx, items, system_role=system_role, resources=resources, embed_fn=embed_fn)
        pool = (self.build_needs(ctx) if resources is None else resources)[POOL]
        fixed = pool[: self.shots] if self.selection == "first" else stratified_examples(ctx.evalset, self.shots,
                                                                                         ctx.seed, pool)
        return {i.id: self._prepared(ctx.evalset, i, fixed, system_role) for i in items}

    def batch_preparer(self, ctx: PrepareContext, *, system_role: bool, resources: Resources,
                       embed_fn: EmbedFn | None = None) -> BatchPreparer:
        """Similar examples from each batch's query vectors; the pool is embedded with the first batch, off the
        calls' path."""
        evalset, pool = ctx.evalset, resources[POOL]
        pool_vecs: list[np.ndarray] = []

        def few_shot_batch(items: list[EvalItem], vecs: np.ndarray) -> dict[str, Prepared]:
            if not pool_vecs:
                pool_vecs.append((embed_fn or default_embed)(query_texts(evalset, pool)))
            per_item = similar_examples(evalset, items, self.shots, pool, query_vecs=vecs, pool_vecs=pool_vecs[0])
            return {i.id: self._prepared(evalset, i, per_item[i.id], system_role) for i in items}

        return few_shot_batch

    def _prepared(self, evalset: EvalSet, item: EvalItem, examples: list[EvalItem], system_role: bool) -> Prepared:
        return Prepared(self.render(evalset, item.input, examples=examples, system_role=system_role),
                        shot_ids=[e.id for e in examples])


# -- the example pool and the selections ------------------------------------------------------------------------


def example_pool(evalset: EvalSet, *, keep_leaked: bool = False) -> list[EvalItem]:
    """The training items a few-shot prompt may show: the train split without the items that repeat or nearly
    repeat a test item (harness.data.leakage), unless `keep_leaked` (run.keep_leaked: true)."""
    if keep_leaked:
        return list(evalset.train)
    from harness.data.leakage import leaked_train_items

    leaked = leaked_train_items(evalset)
    return [i for i in evalset.train if i.id not in leaked]


def pool_or_raise(evalset: EvalSet, keep_leaked: bool) -> list[EvalItem]:
    """The example pool, or ValueError saying why there is none to show and how to fix it."""
    if not evalset.train:
        raise ValueError(f"few_shot needs train.jsonl in the eval set (the example pool); add it under "
                         f"{evalset.path}, or leave this variant out (--variants)")
    pool = example_pool(evalset, keep_leaked=keep_leaked)
    if not pool:
        raise ValueError(f"few_shot: every item of train.jsonl repeats or nearly repeats a test item, so none "
                         f"is left to show as an example; add other training items, or set "
                         f"run.keep_leaked: true to use them anyway ({evalset.path / 'train.jsonl'})")
    return pool


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

    embed_fn = embed_fn or default_embed
    pool = evalset.train if pool is None else pool
    if pool_vecs is None:
        pool_vecs = embed_fn(query_texts(evalset, pool))
    if query_vecs is None:
        query_vecs = embed_fn(query_texts(evalset, items))
    idx = nearest_neighbours(query_vecs, pool_vecs, min(k, len(pool)))
    return {item.id: [pool[j] for j in reversed(list(row))] for item, row in zip(items, idx, strict=True)}
