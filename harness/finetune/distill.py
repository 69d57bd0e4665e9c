"""Distillation data: a model's recorded answers on the train split, as the answers a fine-tune learns.

Teams retiring a fine-tuned model often have no labels, only that model's answers. `harness run CONFIG
--split train --variants NAME` records them (priced and cached like any run); `distilled_evalset` turns that
run folder into the eval set the exports and trainers already read: its train split is the items the variant
answered well, each with the recorded answer as its `expected`. Everything downstream is unchanged: the
fine-tuned variant's renderer, the held-out guards (a train item repeating a test item is dropped; a
near-duplicate too unless keep_leaked) and the written file's check.

Only clean answers are used: a failed call, an answer with an issue (truncated, empty, refused), an answer
that is not format-valid, or one made of tool calls teaches the wrong thing. A run over the test split is
refused: held-out answers must never become training data.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from harness.data.evalset import EvalSet
from harness.errors import HarnessError
from harness.finetune.data import TrainingSplit
from harness.records import EvalItem, Record
from harness.rundir.folder import RunFolder, latest_records

# why a train item's recorded answer was not used, in the order the counts are printed
REASONS = {
    "error": "call failed",
    "answer_issue": "answer issue (truncated, empty, refused)",
    "format_invalid": "not format-valid",
    "tool_calls": "tool calls (not exported from a run)",
    "unanswered": "not asked in the run",
}


@dataclass
class Distilled:
    """The run's answers as an eval set to export or train from, and what was left out and why."""

    run_dir: Path
    variant: str
    evalset: EvalSet  # train = the items with a clean answer, `expected` = that answer
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason (REASONS) -> train item ids

    @property
    def answered(self) -> int:
        return len(self.evalset.train)


def _why_not(rec: Record) -> str | None:
    """The reason this record's answer is no training target, or None when it is a clean one."""
    if rec.error is not None:
        return "error"
    if rec.answer_issue is not None:
        return "answer_issue"
    if rec.tool_calls:
        return "tool_calls"
    if rec.format_valid is not True or rec.raw_text is None:
        return "format_invalid"
    return None


def _answer(evalset: EvalSet, rec: Record) -> object:
    """The recorded answer as an `expected` value: the parsed JSON of a JSON task (written back compactly by the
    renderer, as the labels are), the text of a free-text task."""
    return rec.parsed if evalset.schema is not None else (rec.raw_text or "").strip()


def open_train_run(run_dir: Path, evalset: EvalSet) -> RunFolder:
    """The run folder, refused unless it answered the train split of this very eval set."""
    folder = RunFolder.open(run_dir)
    m = folder.manifest
    if (m.split or "test") != "train":
        raise HarnessError(f"{run_dir}: a run over the {m.split or 'test'} split; training data never comes from "
                           f"held-out answers: record train answers with `harness run CONFIG --split train "
                           f"--variants NAME`")
    if m.evalset.content_hash != evalset.content_hash:
        raise HarnessError(f"{run_dir}: ran on another version of {evalset.path} (hash "
                           f"{str(m.evalset.content_hash)[:12]}, now {evalset.content_hash[:12]}); run "
                           f"`harness run CONFIG --split train` again")
    return folder


def distilled_evalset(evalset: EvalSet, run_dir: Path, variant: str) -> Distilled:
    """`evalset` with its train split replaced by the train items `variant` answered cleanly in the run, each
    expecting that answer. With repeats, an item's first clean repeat is used."""
    folder = open_train_run(run_dir, evalset)
    records = [r for r in latest_records(folder.records(repair=True)) if r.variant == variant]
    if not records:
        names = ", ".join(folder.manifest.selected_variants or sorted(folder.manifest.variants)) or "none"
        raise HarnessError(f"{run_dir}: no records of variant {variant!r} (the run's variants: {names})")
    by_item: dict[str, list[Record]] = {}
    for rec in sorted(records, key=lambda r: r.repeat):
        by_item.setdefault(rec.item_id, []).append(rec)
    dropped: dict[str, list[str]] = {}
    items: list[EvalItem] = []
    for item in evalset.train:
        recs = by_item.get(item.id)
        if not recs:
            dropped.setdefault("unanswered", []).append(item.id)
            continue
        clean = next((r for r in recs if _why_not(r) is None), None)
        if clean is None:
            dropped.setdefault(_why_not(recs[0]) or "format_invalid", []).append(item.id)
            continue
        items.append(item.model_copy(update={"expected": _answer(evalset, clean)}))
    return Distilled(run_dir, variant, dataclasses.replace(evalset, train=items), dropped)


def distill_lines(d: Distilled, split: TrainingSplit) -> list[str]:
    """The counts: answers used, and every train item left out, by reason."""
    total = d.answered + sum(len(ids) for ids in d.dropped.values())
    used = len(split.train) + len(split.validation)
    parts = [f"{len(d.dropped[k])} {text}" for k, text in REASONS.items() if d.dropped.get(k)]
    if split.excluded:
        parts.append(f"{len(split.excluded)} repeat a test item")
    if split.leaked and not split.keep_leaked:
        parts.append(f"{len(split.leaked)} nearly repeat a test item")
    sampled_out = d.answered - len(split.excluded) - (0 if split.keep_leaked else len(split.leaked)) - used
    if sampled_out > 0:
        parts.append(f"{sampled_out} not sampled (finetune.max_train_items)")
    lines = [f"distilled   {used} of {total} train items use variant {d.variant}'s recorded answer "
             f"(from {d.run_dir}, train split)" + (f"; dropped: {', '.join(parts)}" if parts else "")]
    examples = {k: d.dropped[k][:5] for k in REASONS if k != "unanswered" and d.dropped.get(k)}
    if examples:
        lines.append(f"dropped     {json.dumps(examples)}")
    return lines
