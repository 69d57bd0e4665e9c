"""Agreement with a reference: every other variant's answer scored against the reference variant's answer to
the same item, with the task's own scoring (core checks, named scorers, the judge), the reference's answer
standing where the item's `expected` stands. No label is needed, so a production model's answers (a fine-tune
about to retire) can be the yardstick for its replacements.

The result is one Score named `agreement` in each record's `scores`: its value is the primary score against the
reference (exact / per field / sets / F1 / similarity / judge, as task.yaml says), `detail` names the reference
(variant, run folder, repeat) and keeps the per-field results and each named scorer's value. Rules:
- a call that got no answer agrees with nothing (0), as it is wrong on every score;
- an item the reference did not answer (an error record, a bad answer, absent from a saved run) cannot be
  compared: the score is None with `detail.reference_missing`, and the tables count it apart (never 0, never in
  the agreement's denominator);
- the reference's own records get no agreement score (the tables show "—").
Repeats pair repeat by repeat when the reference has the candidate's repeat, else with the reference's repeat 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError
from harness.records import EvalItem, Record, Score
from harness.scoring.scorers import AGREEMENT
from harness.scoring.suite import TaskScoring

AGREEMENT_VERSION = "1"


@dataclass(frozen=True)
class ReferenceSource:
    """Where the reference answers come from: a variant of this run (`run` None), or of a saved run folder."""

    variant: str
    run: str | None = None
    run_id: str | None = None

    def label(self) -> str:
        return self.variant if self.run is None else f"{self.variant} ({self.run_id or self.run})"


def parse_reference(text: str) -> tuple[str, str]:
    """`--reference RUN_DIR:VARIANT` -> (run folder, variant); the variant is after the last colon."""
    folder, sep, variant = text.rpartition(":")
    if not sep or not folder or not variant:
        raise HarnessError(f"--reference {text!r}: give RUN_DIR:VARIANT (a saved run folder and one of its "
                           f"variants, e.g. results/prod-20261201-0900:ft_prod)")
    return folder, variant


def check_labels(evalset: Any, reference: str | None) -> tuple[str | None, str | None]:
    """Test items without `expected` are measured by agreement alone: (the error when there is no reference to
    measure them by, else None; the line saying how many are scored by agreement only, else None)."""
    missing = [i.id for i in evalset.test if i.expected is None]
    if not missing:
        return None, None
    if reference is None:
        return (f"{evalset.path / 'test.jsonl'}: item {missing[0]!r} has no expected answer"
                f"{f' (nor {len(missing) - 1} others)' if len(missing) > 1 else ''}: add `expected`, or score "
                "against a reference's answers with `reference: VARIANT` in the config (or --reference "
                "RUN_DIR:VARIANT)"), None
    return None, (f"{len(missing)} of {len(evalset.test)} test items have no expected answer: scored by agreement "
                  f"with {reference} only")


def reference_answer(ref: Record | None, free_text: bool) -> tuple[bool, Any]:
    """(usable, the answer as an expected value): the parsed JSON of a format-valid answer, the raw text of a
    free-text one. An error, a bad answer (truncated, empty, refused) or an invalid one is not usable."""
    if ref is None or ref.error is not None or ref.answer_issue is not None or not ref.format_valid:
        return False, None
    return True, (ref.raw_text if free_text else ref.parsed)


class ReferenceAnswers:
    """The reference's records by (item, repeat), and which repeat a candidate record pairs with."""

    def __init__(self, records: Iterable[Record], source: ReferenceSource):
        self.source = source
        self.by_key = {(r.item_id, r.repeat): r for r in records if r.variant == source.variant}
        self.repeats = {rep for _, rep in self.by_key}

    def __len__(self) -> int:
        return len(self.by_key)

    def repeat_for(self, rec: Record) -> int:
        return rec.repeat if rec.repeat in self.repeats else 0

    def get(self, rec: Record) -> Record | None:
        return self.by_key.get((rec.item_id, self.repeat_for(rec)))

    def applies_to(self, rec: Record) -> bool:
        """The reference's own records (in this run) are not scored against themselves."""
        return not (self.source.run is None and rec.variant == self.source.variant)


def _detail(answers: ReferenceAnswers, rec: Record, **more: Any) -> dict[str, Any]:
    src = answers.source
    return {"reference": src.variant, "run": src.run, "run_id": src.run_id, "reference_repeat": answers.repeat_for(rec),
            **more}


async def agreement_score(scoring: TaskScoring, rec: Record, item: EvalItem | None, answers: ReferenceAnswers,
                          runtime: Any = None) -> Score:
    """One record's agreement with the reference (see the module docstring)."""
    usable, ref_answer = reference_answer(answers.get(rec), scoring.free_text)
    if not usable:
        why = "the reference has no usable answer to this item"
        return Score(None, why, _detail(answers, rec, reference_missing=True))
    if rec.error is not None:
        return Score(0.0, "no answer (the call failed): agrees with nothing", _detail(answers, rec))
    base = item if item is not None else EvalItem(id=rec.item_id, input={})
    ref_item = base.model_copy(update={"expected": ref_answer})
    scratch = rec.model_copy(update={"scores": {}, "score_errors": {}, "eval_cost_usd": None, "expected": ref_answer,
                                     "primary": None})
    scoring.score_answer(scratch, ref_item, rec.raw_text or "", rec.answer_issue)
    if scoring.has_async:
        await scoring.finish(scratch, ref_item, runtime)
    named = {n: s.value for n, s in scratch.scores.items()}
    failed = {n: e.error for n, e in scratch.score_errors.items()}
    detail = _detail(answers, rec, primary=scoring.primary, fields=scratch.fields, scores=named)
    if failed:
        detail["score_errors"] = failed
    value = scratch.primary
    why = ("agrees" if value == 1 else "disagrees" if value == 0 else
           f"{scoring.primary} {value:.2f}" if value is not None else
           f"unknown: {failed.get(scoring.primary) or 'the scorer could not tell'}")
    return Score(value, f"{why} with {answers.source.label()}", detail, scratch.eval_cost_usd, scorer=AGREEMENT,
                 version=AGREEMENT_VERSION)


async def score_against(scoring: TaskScoring, records: list[Record], items: dict[str, EvalItem],
                        answers: ReferenceAnswers, runtime: Any = None) -> int:
    """Write the agreement score into each record the reference applies to (its judge cost into the record's
    evaluation cost, once); returns how many were scored."""
    n = 0
    for rec in records:
        if not answers.applies_to(rec):
            rec.scores.pop(AGREEMENT, None)
            continue
        old = rec.scores.get(AGREEMENT)
        score = await agreement_score(scoring, rec, items.get(rec.item_id), answers, runtime)
        if old is not None and old.cost_usd:  # scored again (a resumed run): its earlier judge cost is replaced
            rec.eval_cost_usd = (rec.eval_cost_usd or 0.0) - old.cost_usd
        if score.cost_usd is not None:
            rec.eval_cost_usd = (rec.eval_cost_usd or 0.0) + score.cost_usd
        rec.scores[AGREEMENT] = score
        n += 1
    return n
