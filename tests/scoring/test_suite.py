"""The suite writes each scorer's result where it belongs: a Score, stamped with the scorer's family and version,
in `record.scores`; a scorer that failed is a ScoreError in `record.score_errors` (never a score), which the
summary counts as unknown. A scorer registered by a caller works like a built-in one."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from harness.records import EvalItem, Record, Score
from harness.scoring.base import ScoreContext, ScorerSpec, TaskInfo
from harness.scoring.registry import build_scorers, builtin_registry
from harness.scoring.scorers import summarize
from harness.scoring.suite import TaskScoring


class Shouty(ScorerSpec):
    """A caller's own scorer: the share of upper-case letters; it breaks on a question mark (a bug)."""

    scorer: Literal["shouty"]
    version = "7"

    def score(self, ctx: ScoreContext) -> Score:
        if "?" in ctx.raw_text:
            raise KeyError("question mark")
        letters = [c for c in ctx.raw_text if c.isalpha()]
        return Score(sum(c.isupper() for c in letters) / len(letters) if letters else None, "share upper-case")


class TooBig(ScorerSpec):
    scorer: Literal["too_big"]

    def score(self, ctx: ScoreContext) -> Score:
        return Score(2.0, "off the scale")


def scored(text: str, specs: list[dict], tmp_path: Path, issue: str | None = None) -> Record:
    registry = {**builtin_registry(), "shouty": Shouty, "too_big": TooBig}
    (tmp_path / "mine.py").write_text("def yes(answer, expected, item):\n    return True\n")
    scoring = TaskScoring(None, build_scorers(specs, TaskInfo(tmp_path, None), registry), primary=specs[0]["name"])
    item = EvalItem(id="i", input={"q": "x"}, expected="hello")
    rec = Record(item_id="i", variant="v", model="m", model_id="m", request={}, expected="hello", raw_text=text)
    scoring.score_answer(rec, item, text, issue)
    return rec


SPECS = [{"name": "loud", "scorer": "shouty"}, {"name": "big", "scorer": "too_big"},
         {"name": "greets", "scorer": "contains", "any": ["hello"]},
         {"name": "mine", "scorer": "python", "function": "mine:yes"}]


def test_scores_are_stamped_with_their_scorer_and_version(tmp_path):
    rec = scored("HELLO there", SPECS, tmp_path)
    assert rec.scores["loud"] == Score(5 / 10, "share upper-case", scorer="shouty", version="7")
    assert (rec.scores["greets"].scorer, rec.scores["greets"].version) == ("contains", "1")
    mine = rec.scores["mine"]
    assert mine.value == 1.0 and mine.scorer == "python" and mine.version.startswith("sha256:")
    assert rec.primary == 0.5 and rec.format_valid is True and rec.correct is False  # "hello there" != "hello"


def test_a_scorer_that_fails_is_a_score_error_never_a_score(tmp_path):
    rec = scored("hello?", SPECS, tmp_path)
    assert "loud" not in rec.scores and "big" not in rec.scores
    assert rec.score_errors["loud"].error == "scorer error: KeyError: 'question mark'"
    assert rec.score_errors["loud"].scorer == "shouty"
    assert rec.score_errors["big"].error == "scorer returned 2.0, outside 0..1"
    assert rec.primary is None  # the primary scorer failed: unknown, not 0
    row = summarize([rec, scored("HELLO", SPECS, tmp_path)], {}, {},
                    {"primary": "loud", "scorers": [{"name": s["name"], "scorer": s["scorer"]} for s in SPECS]})
    assert row["score_loud"] == 1.0 and row["score_loud_unknown"] == 1
    assert row["score_big"] is None and row["score_big_unknown"] == 2
    assert row["accuracy"] == 1.0 and row["accuracy_unknown"] == 1


def test_a_bad_answer_scores_zero_on_every_scorer(tmp_path):
    rec = scored("", SPECS, tmp_path, issue="empty answer")
    assert {n: s.value for n, s in rec.scores.items()} == {"loud": 0.0, "big": 0.0, "greets": 0.0, "mine": 0.0}
    assert not rec.score_errors and rec.primary == 0.0 and rec.format_valid is False
    assert rec.scores["big"].scorer == "too_big"
