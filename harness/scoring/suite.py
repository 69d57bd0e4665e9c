"""A task's whole scoring: the core scores (harness.scoring.scorers), its named scorers (`scoring:`) and its
primary score (`primary:`), applied to one record.

Where each value goes:
- `record.format_valid`, `.correct`, `.fields`, ... (harness.scoring.scorers.Checks): the core checks;
- `record.scores[name]`: the named scorer's `Score` (value in 0..1 or None: unknown; why; what a model-graded
  scorer asked and got back in `detail`; its cost), or `record.score_errors[name]` where the scorer failed;
- `record.primary`: the value of the primary score, which the tables, the statistics and the gate read as
  "accuracy" (so they need not know the task: a run folder stays self-describing);
- `record.eval_cost_usd`: what the scoring cost (judge calls).

The rule "every record is in the denominator" holds for every score: an answer with an issue (truncated,
empty, refused) scores 0 on every scorer, as it is wrong on the core score; an errored call (no answer) is not
scored at all (its record keeps no scores) and the summary counts it as 0 on every score.
Only a scorer that cannot tell (a judge that failed, an item without the value a scorer needs) leaves a score
unknown. A built-in scorer that raises (a bug) is recorded as a ScoreError (unknown in the tables); a user's
python scorer that raises stops the run (HarnessError, exit 2), since its numbers would be wrong everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.errors import HarnessError
from harness.records import EvalItem, Record, Score, ScoreError, ToolCall
from harness.scoring.base import ScoreContext, ScorerSpec
from harness.scoring.scorers import Scorer, named_value
from harness.scoring.tool_calls import ToolCallScorer

DEFAULT_PRIMARY = "exact"


class TaskScoring:
    def __init__(self, schema: dict[str, Any] | None, scorers: list[ScorerSpec] | None = None,
                 primary: str | None = None, render_input: Callable[[EvalItem], str] | None = None,
                 tools: list[dict[str, Any]] | None = None):
        self.core = Scorer(schema)
        # A task with tools: the core checks score the answer's calls (or its text where no call is right).
        self.tool_calls = ToolCallScorer(tools) if tools else None
        self.scorers = list(scorers or [])
        names = [s.name for s in self.scorers]
        if primary not in (None, DEFAULT_PRIMARY, "accuracy") and primary not in names:
            raise ValueError(f"primary: {primary!r} is not a scorer name (scorers: {', '.join(names) or 'none'}; "
                             f"or {DEFAULT_PRIMARY!r}, the default exact / normalised match)")
        self.primary = DEFAULT_PRIMARY if primary in (None, "accuracy") else primary
        self.render_input = render_input or (lambda item: "\n".join(f"{k}: {v}" for k, v in item.input.items()))

    @classmethod
    def for_evalset(cls, evalset: Any) -> TaskScoring:
        """The eval set's scoring, its `scoring:` entries bound (EvalSetError naming task.yaml's line if one is bad)."""
        from harness.scoring.task_yaml import scorers_of

        return cls(evalset.schema, scorers_of(evalset), getattr(evalset, "primary", None), evalset.render_input,
                   tools=getattr(evalset, "tools", None))

    @property
    def free_text(self) -> bool:
        return self.core.free_text

    @property
    def has_async(self) -> bool:
        return any(s.is_async for s in self.scorers)

    def judges(self) -> list[ScorerSpec]:
        return [s for s in self.scorers if s.is_async]

    def describe(self) -> dict[str, Any]:
        """The manifest's `scoring` entry: what each score column means."""
        tools = {"tools": sorted(self.tool_calls.validators)} if self.tool_calls is not None else {}
        return {"primary": self.primary, "free_text": self.free_text, **tools,
                "scorers": [{**s.model_dump(mode="json", exclude_none=True), "describe": s.describe()}
                            for s in self.scorers]}

    # -- one record ----------------------------------------------------------------------------------------
    def context(self, rec: Record, item: EvalItem) -> ScoreContext:
        return ScoreContext(item=item, raw_text=rec.raw_text or "", answer=rec.parsed,
                            format_valid=bool(rec.format_valid), free_text=self.free_text,
                            input_text=self.render_input(item))

    def score_answer(self, rec: Record, item: EvalItem, text: str, issue: str | None,
                     tool_calls: list[ToolCall] | None = None) -> None:
        """Core scores and every synchronous scorer; a model-graded scorer waits for `finish`."""
        if self.tool_calls is not None:
            rec.parsed, checks = self.tool_calls.score(text, tool_calls, item.expected)
        else:
            rec.parsed, checks = self.core.score(text, item.expected)
        if issue is not None:
            rec.answer_issue = issue
            checks = checks.invalid()
        checks.write(rec)
        ctx = self.context(rec, item) if issue is None else None
        for sc in self.scorers:
            if issue is not None:
                _write(rec, sc.name, sc.stamp(sc.zero(item.expected, f"bad answer ({issue}): wrong on every score")))
            elif not sc.is_async:
                _write(rec, sc.name, sc.stamp(_safe_score(sc, ctx)))
        self.set_primary(rec)

    def needs_finish(self, rec: Record) -> bool:
        return rec.error is None and rec.answer_issue is None and any(
            sc.name not in rec.scores and sc.name not in rec.score_errors for sc in self.judges())

    async def finish(self, rec: Record, item: EvalItem, runtime: Any) -> None:
        """The model-graded scorers (the judge), after the answer is in."""
        if not self.needs_finish(rec):
            return
        ctx = self.context(rec, item)
        for sc in self.judges():
            try:
                result = await sc.ascore(ctx, runtime)  # type: ignore[attr-defined]
            except HarnessError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed evaluator is a recorded unknown, not a crash
                result = ScoreError(f"scorer error: {type(exc).__name__}: {exc}")
            _write(rec, sc.name, sc.stamp(result))
        self.set_primary(rec)

    def set_primary(self, rec: Record) -> None:
        if self.primary == DEFAULT_PRIMARY:
            # an item without an expected answer (agreement with a reference measures it): accuracy not measured
            rec.primary = None if rec.expected is None else 1.0 if rec.correct else 0.0
        else:
            rec.primary = named_value(rec, self.primary)

    def warm(self, texts: list[str], items: list[EvalItem]) -> None:
        """Batch what batches well before scoring many records at once (embeddings for similarity)."""
        for sc in self.scorers:
            warm = getattr(sc, "warm", None)
            if warm is None:
                continue
            refs: list[str] = []
            for item in items:
                ctx = ScoreContext(item=item, raw_text="", answer=None, format_valid=True, free_text=self.free_text)
                refs += sc.references(ctx) or []  # type: ignore[attr-defined]
            warm([t for t in texts if t and t.strip()] + refs)


def _safe_score(sc: ScorerSpec, ctx: ScoreContext | None) -> Score | ScoreError:
    assert ctx is not None
    try:
        result = sc.score(ctx)
    except HarnessError:
        raise
    except Exception as exc:  # noqa: BLE001 - a built-in scorer's bug is recorded as a failure, not a crash
        return ScoreError(f"scorer error: {type(exc).__name__}: {exc}")
    if isinstance(result, Score) and result.value is not None and not 0.0 <= result.value <= 1.0:
        return ScoreError(f"scorer returned {result.value!r}, outside 0..1", result.detail, result.cost_usd)
    return result


def _write(rec: Record, name: str, result: Score | ScoreError) -> None:
    """Keep one scorer's (stamped) result in the record's place for it; its cost is evaluation cost."""
    if isinstance(result, ScoreError):
        rec.score_errors[name] = result
        rec.scores.pop(name, None)
    else:
        rec.scores[name] = result
        rec.score_errors.pop(name, None)
    if result.cost_usd is not None:
        rec.eval_cost_usd = (rec.eval_cost_usd or 0.0) + result.cost_usd

