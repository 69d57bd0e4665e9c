"""The built-in scorers, each against hand-computed values, with the edge cases a real task hits: an empty
answer, a null field, invalid JSON, unicode, numbers written as strings."""

import unicodedata
from pathlib import Path

import pytest

from harness.data.text import match_key
from harness.records import EvalItem, Record
from harness.scoring.base import TaskInfo
from harness.scoring.registry import ScoringError, build_scorers
from harness.scoring.scorers import Scorer, summarize
from harness.scoring.suite import TaskScoring

SCHEMA = {
    "type": "object",
    "properties": {
        "intent": {"type": "string", "enum": ["a", "b", "c"]},
        "urgent": {"type": "boolean"},
        "labels": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "steps": {"type": "array", "items": {"type": "string"}},
        "total": {"type": ["number", "string", "null"]},
        "note": {"type": ["string", "null"]},
    },
    "required": ["intent"],
    "additionalProperties": False,
}


def scored(specs: list[dict], text: str, expected, *, schema=SCHEMA, metadata=None, issue=None,
           folder: Path = Path(".")) -> Record:
    """One record scored the way the executor scores it."""
    scoring = TaskScoring(schema, build_scorers(specs, TaskInfo(folder, schema)))
    item = EvalItem(id="i1", input={"text": "q"}, expected=expected, metadata=metadata or {})
    rec = Record(item_id="i1", variant="v", model="m", model_id="m", request={}, expected=expected, raw_text=text)
    scoring.score_answer(rec, item, text, issue)
    return rec


def one(spec: dict, text: str, expected, **kw) -> float | None:
    spec = {"name": "s", **spec}
    return scored([spec], text, expected, **kw).scores["s"].value


# -- free text: normalised match --------------------------------------------------------------------------------

@pytest.mark.parametrize("answer, expected, ok", [
    ("  Paris. ", "paris", True),  # case, surrounding whitespace and punctuation
    ("PARIS!!", ["Lyon", "Paris"], True),  # any acceptable answer
    ("New \t  York", "new york", True),  # inner whitespace runs
    ("«Bonjour»,", "bonjour", True),  # unicode punctuation around the answer
    ("Straße", "STRASSE", True),  # casefold, not lower()
    (unicodedata.normalize("NFD", "Café"), "café", True),  # composed vs decomposed: the same text
    ("U.S.A.", "USA", False),  # inner punctuation is part of the answer
    ("3.5", "35", False),
    ("Paris is the capital", "Paris", False),
    ("", "Paris", False),
])
def test_free_text_normalised_match(answer, expected, ok):
    parsed, s = Scorer(None).score(answer, expected)
    assert parsed == answer
    assert s.correct is ok
    assert s.format_valid is bool(answer.strip())
    assert s.json_parsed is None and s.json_extractable is None


def test_match_key_is_exactly_what_the_issue_says():
    assert match_key("  ¿Qué   tal?  ") == "qué tal"
    assert match_key("don't") == "don't"  # inner punctuation stays (the leakage normaliser drops it)
    assert match_key("x²") == "x²"  # no compatibility folding (NFKC would make it "x2")


def test_free_text_empty_answer_is_format_invalid_and_wrong_on_every_score():
    rec = scored([{"name": "hi", "scorer": "regex", "pattern": "!", "negate": True}], "", "Hello",
                 schema=None, issue="empty answer")
    assert rec.format_valid is False and rec.correct is False
    assert rec.scores["hi"].value == 0.0  # "no exclamation mark" must not pass on an empty answer
    assert "empty answer" in rec.scores["hi"].explanation and rec.answer_issue == "empty answer"
    assert rec.primary == 0.0


# -- JSON exact match: uniqueItems arrays are sets ---------------------------------------------------------------

def test_unique_items_array_compares_as_a_set():
    s = Scorer(SCHEMA)
    exp = {"intent": "a", "labels": ["x", "y"]}
    assert s.score('{"intent": "a", "labels": ["y", "x"]}', exp)[1].correct
    assert s.score('{"intent": "a", "labels": ["y", "x"]}', exp)[1].fields["labels"]
    assert not s.score('{"intent": "a", "labels": ["x"]}', exp)[1].correct
    assert not s.score('{"intent": "a", "labels": ["x", "y", "z"]}', exp)[1].correct
    # without uniqueItems the order counts
    exp2 = {"intent": "a", "steps": ["x", "y"]}
    assert not s.score('{"intent": "a", "steps": ["y", "x"]}', exp2)[1].correct
    assert s.score('{"intent": "a", "steps": ["x", "y"]}', exp2)[1].correct


def test_exact_scorer_on_one_field_and_on_invalid_json():
    spec = {"scorer": "exact", "field": "intent"}
    assert one(spec, '{"intent": "a", "urgent": true}', {"intent": "a", "urgent": False}) == 1.0
    assert one(spec, '{"intent": "b"}', {"intent": "a"}) == 0.0
    assert one(spec, '{"intent": "a"', {"intent": "a"}) == 0.0  # invalid JSON
    assert one({"scorer": "exact"}, "Paris.", ["paris"], schema=None) == 1.0


# -- partial credit ----------------------------------------------------------------------------------------------

def test_partial_credit_is_the_share_of_fields_right():
    exp = {"intent": "a", "urgent": True, "note": None}
    assert one({"scorer": "partial"}, '{"intent": "a", "urgent": false, "note": null}', exp) == pytest.approx(2 / 3)
    assert one({"scorer": "partial", "fields": ["intent", "note"]}, '{"intent": "a", "urgent": false, "note": null}',
               exp) == 1.0  # a null field equals a null field
    assert one({"scorer": "partial"}, '{"intent": "a", "urgent": false, "note": "x"}', exp) == pytest.approx(1 / 3)
    assert one({"scorer": "partial"}, "not json", exp) == 0.0
    assert one({"scorer": "partial"}, '{"intent": "zzz", "urgent": true, "note": null}', exp) == 0.0  # schema-invalid


# -- f1 ----------------------------------------------------------------------------------------------------------

def test_f1_per_answer_and_micro_over_records():
    spec = {"name": "lab", "scorer": "f1", "field": "labels"}
    r1 = scored([spec], '{"intent": "a", "labels": ["a", "d"]}', {"intent": "a", "labels": ["a", "b", "c"]})
    # tp=1 (a), fp=1 (d), fn=2 (b, c): F1 = 2*1 / (2*1 + 1 + 2) = 0.4
    assert r1.scores["lab"].value == pytest.approx(0.4)
    assert r1.scores["lab"].detail == {"tp": 1, "fp": 1, "fn": 2}
    r2 = scored([spec], '{"intent": "a", "labels": ["y", "x"]}', {"intent": "a", "labels": ["x", "y"]})
    assert r2.scores["lab"].value == 1.0  # order does not count
    r3 = scored([spec], '{"intent": "a", "labels": []}', {"intent": "a", "labels": None})
    assert r3.scores["lab"].value == 1.0  # a null expected field is "no labels": nothing to find, nothing predicted
    r4 = scored([spec], '{"intent": "a", "labels": ["x"', {"intent": "a", "labels": ["x"]})
    assert r4.scores["lab"].value == 0.0 and r4.scores["lab"].detail["fn"] == 1  # invalid JSON
    r5 = scored([spec], '{"intent": "a", "labels": ["Zürich", "Köln"]}', {"intent": "a", "labels": ["Köln", "Zürich"]})
    assert r5.scores["lab"].value == 1.0  # unicode labels
    row = summarize([r1, r2], {}, {}, {"primary": "exact", "scorers": [{"name": "lab", "scorer": "f1",
                                                                         "field": "labels"}]})
    assert row["score_lab"] == pytest.approx((0.4 + 1.0) / 2)
    # micro: tp=1+2, fp=1+0, fn=2+0 -> 2*3 / (6 + 1 + 2)
    assert row["score_lab_micro"] == pytest.approx(6 / 9)


# -- number ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("answer, expected, ok", [
    ('{"intent": "a", "total": 12.50}', 12.5, 1.0),
    ('{"intent": "a", "total": "12.50"}', 12.5, 1.0),  # a number written as a string
    ('{"intent": "a", "total": 12.509}', 12.5, 1.0),  # within 0.01
    ('{"intent": "a", "total": 12.52}', 12.5, 0.0),  # off by 0.02
    ('{"intent": "a", "total": "1,234.50"}', "1234.5", 1.0),  # thousands separator; expected as a string
    ('{"intent": "a", "total": "$12.5"}', 12.5, 1.0),
    ('{"intent": "a", "total": "12,5"}', 12.5, 0.0),  # a decimal comma is not read
    ('{"intent": "a", "total": null}', None, 1.0),  # null expected, null given
    ('{"intent": "a", "total": 0}', None, 0.0),
    ('{"intent": "a", "total": null}', 3, 0.0),
    ('{"intent": "a", "total": "twelve"}', 12, 0.0),
    ('{"intent": "a", "total": 12.5', 12.5, 0.0),  # invalid JSON
])
def test_number_field(answer, expected, ok):
    assert one({"scorer": "number", "field": "total", "tolerance": 0.01}, answer,
               {"intent": "a", "total": expected}) == ok


def test_number_relative_tolerance_and_free_text():
    rel = {"scorer": "number", "field": "total", "tolerance": 0.1, "relative": True}
    assert one(rel, '{"intent": "a", "total": 215}', {"intent": "a", "total": 200}) == 1.0  # 15 <= 10% of 200
    assert one(rel, '{"intent": "a", "total": 221}', {"intent": "a", "total": 200}) == 0.0
    num = {"scorer": "number"}
    assert one(num, " −3 ", "-3", schema=None) == 1.0  # Unicode minus
    assert one(num, "４２", "42", schema=None) == 1.0  # full-width digits
    assert one(num, "The total is 42 euros", "42", schema=None) == 0.0
    assert one({"scorer": "number", "extract": True}, "The total is 42 euros", "42", schema=None) == 1.0
    assert one({"scorer": "number", "extract": True}, "no idea", "42", schema=None) == 0.0
    assert one({"scorer": "number", "field": "total"}, '{"intent": "a"}', {"intent": "a"}) is None  # nothing expected


# -- contains ----------------------------------------------------------------------------------------------------

def test_contains_any_all_none_with_item_templates():
    meta = {"doc_title": "Refund Policy", "facts": ["5 working days", "tracking", "Zürich"]}
    any_ = {"scorer": "contains", "any": ["{metadata.doc_title}"]}
    assert one(any_, "See our refund\n  policy.", "x", schema=None, metadata=meta) == 1.0
    assert one(any_, "See our terms.", "x", schema=None, metadata=meta) == 0.0
    all_ = {"scorer": "contains", "all": ["{metadata.facts}"]}
    rec = scored([{"name": "facts", **all_}], "Cards arrive in 5 working days from ZÜRICH.", "x", schema=None,
                 metadata=meta)
    assert rec.scores["facts"].value == pytest.approx(2 / 3)  # "zürich" casefolds; "tracking" is missing
    assert "tracking" in rec.scores["facts"].explanation
    none_ = {"scorer": "contains", "none": ["!"]}
    assert one(none_, "Hello!", "x", schema=None) == 0.0
    assert one(none_, "Hello.", "x", schema=None) == 1.0
    assert one({"scorer": "contains", "any": ["Paris"], "ignore_case": False}, "paris", "x", schema=None) == 0.0
    assert one(any_, "anything", "x", schema=None, metadata={}) is None  # the item lacks the value: unknown
    # on a JSON task: a field, and the expected answer's fields as templates
    assert one({"scorer": "contains", "field": "note", "any": ["{expected.intent}"]},
               '{"intent": "b", "note": "intent b, surely"}', {"intent": "b"}) == 1.0
    assert one({"scorer": "contains", "field": "note", "any": ["b"]}, '{"intent": "b", "note": null}',
               {"intent": "b"}) == 0.0  # a null field contains nothing


# -- regex -------------------------------------------------------------------------------------------------------

def test_regex():
    hi = {"scorer": "regex", "pattern": "^Hi [A-Z]"}
    assert one(hi, "Hi Sam,\nthanks", "x", schema=None) == 1.0
    assert one(hi, "hi sam", "x", schema=None) == 0.0
    assert one({**hi, "ignore_case": True}, "hi sam", "x", schema=None) == 1.0
    assert one({"scorer": "regex", "pattern": "!", "negate": True}, "Thanks!", "x", schema=None) == 0.0
    assert one({"scorer": "regex", "pattern": r"\d+", "full": True}, "12a", "x", schema=None) == 0.0
    assert one({"scorer": "regex", "pattern": "^Ä", "field": "note"}, '{"intent": "a", "note": "Ärger"}',
               {"intent": "a"}) == 1.0
    assert one({"scorer": "regex", "pattern": ".", "field": "note"}, '{"intent": "a", "note": "x"',
               {"intent": "a"}) == 0.0  # invalid JSON


# -- similarity (the embedded MiniLM) ----------------------------------------------------------------------------

def test_similarity_threshold_and_raw_cosine():
    close = {"scorer": "similarity", "threshold": 0.8}
    assert one(close, "Your card will arrive within five working days.",
               ["Completely unrelated: the weather is nice.", "Your card will arrive within five working days."],
               schema=None) == 1.0  # the best of the acceptable texts
    assert one(close, "I like turtles.", "Your card will arrive within five working days.", schema=None) == 0.0
    rec = scored([{"name": "cos", "scorer": "similarity", "threshold": None}], "The card arrives in five days.",
                 "Your card will arrive within five working days.", schema=None)
    assert 0.5 < rec.scores["cos"].value < 1.0 and rec.scores["cos"].explanation.startswith("cosine")
    assert scored([{"name": "c", **close}], "", "x", schema=None, issue="empty answer").scores["c"].value == 0.0


# -- configuration errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, message", [
    ({"name": "x", "scorer": "nope"}, "unknown scorer 'nope'"),
    ({"name": "correct", "scorer": "exact"}, "taken by a built-in score"),
    ({"name": "x", "scorer": "regex", "pattern": "("}, "not a valid regular expression"),
    ({"name": "x", "scorer": "f1", "field": "nope"}, "not in output_schema"),
    ({"name": "x", "scorer": "f1", "field": "intent"}, "scores an array field"),
    ({"name": "x", "scorer": "contains", "any": ["{expectd.x}"]}, "placeholder"),
])
def test_bad_scorer_configuration_says_what_to_change(spec, message):
    with pytest.raises(ScoringError, match=message):
        build_scorers([spec], TaskInfo(Path("."), SCHEMA))


def test_field_is_refused_on_free_text_and_both_modes_on_contains():
    with pytest.raises(ScoringError, match="free text"):
        build_scorers([{"name": "x", "scorer": "number", "field": "total"}], TaskInfo(Path("."), None))
    with pytest.raises(Exception, match="exactly one of any"):
        build_scorers([{"name": "x", "scorer": "contains", "any": ["a"], "all": ["b"]}], TaskInfo(Path("."), None))
