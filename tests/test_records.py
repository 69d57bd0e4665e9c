"""A record's typed outcome: the core checks, the primary score, retrieval metrics and the named scorers' Score /
ScoreError each in their own field; record lines written in the layout before (one `scores` dict) still load,
and one rule for unknown values holds through a reload: None, never 0."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from harness.analysis.stats import outcomes_frame
from harness.records import Record, Retrieval, Score, ScoreError, is_old_layout, upgrade_layout
from harness.scoring.scorers import primary_value, summarize

OLD_LINES = (Path(__file__).parent / "fixtures" / "records_old_layout.jsonl").read_text("utf-8").splitlines()
# The fixture's scorers, as the manifest of the run they came from describes them.
SCORING = {"primary": "exact", "scorers": [{"name": n, "scorer": s} for n, s in
                                           (("lab", "f1"), ("part", "partial"), ("says_card", "contains"),
                                            ("short", "python"), ("voice", "judge"))]}


def old(i: int) -> Record:
    return Record.model_validate_json(OLD_LINES[i])


def test_every_old_line_round_trips_through_the_new_layout():
    for line in OLD_LINES:
        assert is_old_layout(json.loads(line))
        rec = Record.model_validate_json(line)
        new_line = rec.model_dump_json()
        data = json.loads(new_line)
        assert not is_old_layout(data) and upgrade_layout(data) is data
        assert "explanations" not in data and "evaluations" not in data
        again = Record.model_validate_json(new_line)
        assert again == rec and again.model_dump_json() == new_line


def test_old_line_fields_land_in_their_typed_places():
    judged = old(0)  # RAG, every scorer answered
    assert (judged.json_parsed, judged.format_valid, judged.correct, judged.primary) == (True, True, True, 1.0)
    assert judged.fields == {"intent": True, "urgent": True, "labels": True}
    assert judged.retrieval == Retrieval(recall_at_k=0.0, mrr=0.0)  # a real 0, not unknown
    assert judged.scores["lab"] == Score(1.0, "tp=1 fp=0 fn=0", {"tp": 1, "fp": 0, "fn": 0})
    voice = judged.scores["voice"]
    assert voice.value == 0.75 and voice.explanation == "4/5: fits" and voice.detail["score_raw"] == 4.0
    assert voice.cost_usd == pytest.approx(0.00034) == judged.eval_cost_usd
    assert voice.scorer is None and voice.version is None  # not recorded before: unknown, not guessed
    # the judge call failed / its verdict was unusable: a ScoreError, never a score, its cost kept
    failed, unusable = old(1), old(2)
    assert "voice" not in failed.scores and failed.score_errors["voice"].error.startswith("judge failed: server_error")
    assert unusable.score_errors["voice"] == ScoreError("judge verdict unusable: the verdict is not JSON",
                                                        unusable.score_errors["voice"].detail, 0.00034)
    assert unusable.primary == 1.0  # exact match is this task's primary: the judge failing leaves it known
    empty = old(3)
    assert empty.answer_issue == "empty answer" and empty.format_valid is False and empty.primary == 0.0
    assert all(s.value == 0.0 for s in empty.scores.values()) and not empty.score_errors
    errored = old(4)
    assert errored.error_kind == "client_error" and errored.format_valid is None and errored.fields is None
    assert errored.primary is None and primary_value(errored) == 0.0  # not scored; the tables count it as 0
    assert errored.scores == {} and errored.score_errors == {} and errored.retrieval is None


def test_new_line_is_readable_one_object_with_named_fields():
    data = json.loads(old(0).model_dump_json())
    assert list(data)[0] == "item_id"  # the run folder's line-repair rule looks for it (rundir.record_line)
    assert data["format_valid"] is True and data["primary"] == 1.0
    assert data["retrieval"] == {"recall_at_k": 0.0, "mrr": 0.0}
    assert data["scores"]["voice"]["value"] == 0.75 and data["scores"]["voice"]["explanation"] == "4/5: fits"
    assert data["score_errors"] == {}
    assert set(json.loads(old(1).model_dump_json())["score_errors"]["voice"]) == {
        "error", "detail", "cost_usd", "scorer", "version"}


def test_the_summary_of_old_lines_equals_that_of_their_new_layout():
    recs = [Record.model_validate_json(line) for line in OLD_LINES[:5]]
    again = [Record.model_validate_json(r.model_dump_json()) for r in recs]
    row_old = summarize(recs, {}, {}, SCORING)
    assert row_old == summarize(again, {}, {}, SCORING)
    assert row_old["score_voice_unknown"] == 2 and row_old["score_voice"] == pytest.approx(0.75 / 3)
    # three judge calls: one answered, one unusable (both billed), one failed (not billed: its cost unknown)
    assert row_old["eval_calls"] == 3 and row_old["eval_cost_usd"] == pytest.approx(2 * 0.00034)
    assert row_old["recall_at_k"] == pytest.approx(2 / 3)  # t1 missed its document; t5, t6 expect none
    assert row_old["accuracy"] == pytest.approx(2 / 5)


def test_unknown_stays_none_never_zero_through_a_reload():
    fr = old(5)  # a free-text run whose primary score is a judge that failed: "primary": null
    assert fr.primary is None and primary_value(fr) is None
    again = Record.model_validate_json(fr.model_dump_json())
    assert again.primary is None and primary_value(again) is None
    row = summarize([again], {}, {}, {"primary": "voice"})
    assert row["accuracy"] is None and row["accuracy_unknown"] == 1
    assert math.isnan(outcomes_frame([again])["correct"].iloc[0])
    # a NaN (from pandas or numpy) is unknown too: None in memory, null on disk, None when read back
    nan = Record(item_id="x", variant="v", model="m", model_id="m", request={}, primary=float("nan"),
                 scores={"s": Score(float("nan"), "?")}, retrieval=Retrieval(float("nan"), 1.0))
    assert nan.primary is None and nan.scores["s"].value is None and nan.retrieval.recall_at_k is None
    line = nan.model_dump_json()
    assert '"primary":null' in line and "NaN" not in line
    back = Record.model_validate_json(line)
    assert back.primary is None and back.scores["s"].value is None
    hand_written = line.replace('"primary":null', '"primary":NaN')
    assert Record.model_validate_json(hand_written).primary is None


def test_a_run_from_before_primary_scores_reads_exact_match_as_primary():
    data = json.loads(OLD_LINES[0])
    del data["scores"]["primary"]
    data["scores"]["correct"] = False
    assert Record.model_validate(data).primary == 0.0
    data["scores"]["correct"] = True
    assert Record.model_validate(data).primary == 1.0


def test_score_and_score_error_are_frozen_and_strict():
    s = Score(1.0, "equal", scorer="exact", version="1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.value = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ScoreError("boom").error = "x"  # type: ignore[misc]
    with pytest.raises(ValueError):
        Score(value="high")  # type: ignore[arg-type]
    assert not hasattr(ScoreError("boom"), "value")  # a failure has no value to average
