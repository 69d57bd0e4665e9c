"""The run's leakage checks and what it does about them: the few-shot pool each variant may draw from,
the lines printed before a run, and the manifest's record of what was left out."""

from __future__ import annotations

from typing import Any

from harness.config import RunConfig, VariantConfig
from harness.data.evalset import EvalSet
from harness.prompts.kinds.base import PrepareContext, kind_of


def shown_train_items(cfg: RunConfig, evalset: EvalSet, variants: list[VariantConfig]) -> set[str]:
    """The training items any variant may show the model (checked for leakage): without the train items that
    repeat a test item unless run.keep_leaked."""
    ctx = PrepareContext.of_run(cfg, evalset)
    return set().union(*(kind_of(v).shown_train_ids(ctx) for v in variants))


def leakage_action(cfg: RunConfig, evalset: EvalSet, variants: list[VariantConfig]) -> dict[str, Any] | None:
    """What the run does about train items that repeat a test item (the manifest's `leakage_action`): left out
    of the few-shot pool, or kept with run.keep_leaked. None when no variant shows train items (few-shot) or none
    leaked."""
    from harness.data.leakage import leaked_train_items

    if not any(kind_of(v).shows_train_items for v in variants):
        return None
    leaked = leaked_train_items(evalset)
    if not leaked:
        return None
    return {"train_items": sorted(leaked), "kept": cfg.run.keep_leaked,
            "left_out_of": [] if cfg.run.keep_leaked else ["few-shot pool"]}


def leakage_lines(cfg: RunConfig, evalset: EvalSet, variants: list[VariantConfig]) -> list[str]:
    """Readable leakage findings, and what is done about them."""
    from harness.data.leakage import check_leakage, describe_pairs, leaked_train_items, summarize_findings

    lines = summarize_findings(check_leakage(evalset), evalset, shown_train_items(cfg, evalset, variants))
    if leakage_action(cfg, evalset, variants) is not None:
        leaked = leaked_train_items(evalset)
        if cfg.run.keep_leaked:
            lines.append(f"leakage: kept {len(leaked)} train item(s) that repeat or nearly repeat a test item in the "
                         f"few-shot pool, because run.keep_leaked is true ({describe_pairs(leaked)})")
        else:
            lines.append(f"leakage: left {len(leaked)} train item(s) out of the few-shot pool because they repeat "
                         f"or nearly repeat a test item ({describe_pairs(leaked)}); set run.keep_leaked: true "
                         f"in the config to keep them")
    return lines
