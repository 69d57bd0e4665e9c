import pytest

from harness.records import Record, Usage
from harness.scoring.scorers import Scorer, extract_json, macro_f1, percentile, summarize

SCHEMA = {
    "type": "object",
    "properties": {"intent": {"type": "string", "enum": ["a", "b"]}, "urgent": {"type": "boolean"}},
    "required": ["intent", "urgent"],
    "additionalProperties": False,
}
EXPECTED = {"intent": "a", "urgent": True}


@pytest.fixture
def scorer():
    return Scorer(SCHEMA)


def test_valid_and_correct(scorer):
    parsed, s = scorer.score('{"intent": "a", "urgent": true}', EXPECTED)
    assert parsed == EXPECTED
    assert s.format_valid and s.json_extractable and s.correct and s.correct_lenient
    assert s.fields == {"intent": True, "urgent": True}


def test_valid_but_wrong_field(scorer):
    _, s = scorer.score('{"intent": "b", "urgent": true}', EXPECTED)
    assert s.format_valid and not s.correct
    assert s.fields == {"intent": False, "urgent": True}


def test_invalid_json(scorer):
    parsed, s = scorer.score('{"intent": "a", "urgent": tru', EXPECTED)
    assert parsed is None
    assert not s.json_parsed and not s.format_valid and not s.json_extractable and not s.correct
    assert s.fields == {"intent": False, "urgent": False}


def test_json_with_surrounding_text_is_extractable_not_valid(scorer):
    parsed, s = scorer.score('Sure! Here it is: {"intent": "a", "urgent": true} Hope that helps {', EXPECTED)
    assert parsed == EXPECTED
    assert not s.format_valid
    assert s.json_extractable
    assert not s.correct and s.correct_lenient


def test_code_fence_extraction():
    ok, value = extract_json('```json\n{"x": [1, {"y": 2}]}\n```')
    assert ok and value == {"x": [1, {"y": 2}]}
    assert extract_json("no json here") == (False, None)
    # an unbalanced brace first, a real object later
    assert extract_json('{oops} then {"a": 1}') == (True, {"a": 1})


def test_schema_violation_enum(scorer):
    _, s = scorer.score('{"intent": "zzz", "urgent": true}', EXPECTED)
    assert s.json_parsed and not s.format_valid and not s.correct


def test_schema_violation_extra_key_counts_invalid_but_lenient_correct(scorer):
    _, s = scorer.score('{"intent": "a", "urgent": true, "why": "x"}', EXPECTED)
    assert not s.format_valid
    assert s.correct_lenient  # extra optional field ignored by the content comparison


def test_missing_field(scorer):
    _, s = scorer.score('{"intent": "a"}', EXPECTED)
    assert s.json_parsed and not s.format_valid and not s.correct
    assert s.fields == {"intent": False, "urgent": False}  # nothing counts from an invalid answer


def test_boolean_not_equal_to_int(scorer):
    _, s = scorer.score('{"intent": "a", "urgent": 1}', EXPECTED)
    assert not s.format_valid and not s.correct_lenient


def test_empty_text(scorer):
    parsed, s = scorer.score("", EXPECTED)
    assert parsed is None and not s.format_valid


def test_macro_f1_known_values():
    pairs = [("a", "a"), ("a", "b"), ("b", "b"), ("b", None)]
    # class a: tp1 fp0 fn1 -> 2/3 ; class b: tp1 fp1 fn1 -> 1/2
    assert macro_f1(pairs) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert macro_f1([]) is None
    assert macro_f1([("a", "a"), ("b", "b")]) == 1.0


def test_percentile_matches_numpy_linear():
    xs = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert percentile(xs, 50) == 3.0
    assert percentile(xs, 95) == pytest.approx(8.8)
    assert percentile([], 50) is None


def _rec(i, raw, err=None, cache=False, latency=1.0, cost=0.01):
    scorer = Scorer(SCHEMA)
    r = Record(item_id=i, variant="v", model="m", model_id="x", request={}, expected=EXPECTED,
               latency_s=latency, cache_hit=cache, usage=Usage(prompt_tokens=10, completion_tokens=2),
               cost_usd=None if err else cost)
    if err:
        r.error, r.error_kind = err, "server_error"
    else:
        r.raw_text = raw
        r.parsed, checks = scorer.score(raw, EXPECTED)
        checks.write(r)
        r.primary = 1.0 if r.correct else 0.0
    return r


def test_summarize_counts_every_item_and_excludes_cache_hits_from_latency():
    good = '{"intent": "a", "urgent": true}'
    bad = '{"intent": "b", "urgent": true}'
    recs = [_rec("1", good, latency=1.0), _rec("2", bad, latency=3.0), _rec("3", None, err="boom"),
            _rec("4", good, cache=True, latency=100.0)]
    row = summarize(recs, {"intent": ["a", "b"], "urgent": [True, False]}, {r.item_id: EXPECTED for r in recs})
    assert row["n"] == 4 and row["errors"] == 1 and row["answered"] == 3
    # the unanswered item is in the denominator: it counts as not correct and not valid
    assert row["accuracy"] == pytest.approx(2 / 4)
    assert row["format_valid"] == pytest.approx(3 / 4)
    assert row["accuracy_answered"] == pytest.approx(2 / 3)
    assert row["latency_p50_s"] == 2.0  # cache hit's 100 s excluded
    assert row["latency_n"] == 2 and row["cache_hits"] == 1
    assert row["cost_per_request_usd"] == pytest.approx(0.01)
    assert row["cost_per_correct_usd"] == pytest.approx(0.03 / 2)
    assert row["acc_intent"] == pytest.approx(2 / 4)
    assert row["acc_urgent"] == pytest.approx(3 / 4)


ORDER_SCHEMA = {
    "type": "object",
    "properties": {"intent": {"type": "string"}, "order_id": {"type": "string"}},
    "required": ["intent"],
}


def _order_rec(i: int, expected: dict, answer: dict | None) -> Record:
    r = Record(item_id=f"i{i}", variant="v", model="m", model_id="x", request={}, expected=expected)
    if answer is None:
        r.error, r.error_kind = "boom", "server_error"
    else:
        import json

        r.raw_text = json.dumps(answer)
        r.parsed, checks = Scorer(ORDER_SCHEMA).score(r.raw_text, expected)
        checks.write(r)
        r.primary = 1.0 if r.correct else 0.0
    return r


def test_per_field_accuracy_is_over_the_items_that_expect_the_field():
    """30 items, 9 of which expect the optional order_id: a perfect model scores 100% on it, not 9/30."""
    expected = [{"intent": "refund", **({"order_id": f"A{i}"} if i < 9 else {})} for i in range(30)]
    perfect = [_order_rec(i, e, e) for i, e in enumerate(expected)]
    row = summarize(perfect, {}, {})
    assert row["acc_order_id"] == 1.0 and row["acc_intent"] == 1.0
    # by hand: of the 9 expecting order_id, one answers it wrong and one never answers (error): 7/9; intent is
    # expected by all 30: the error is wrong there too, 29/30
    mixed = list(perfect)
    mixed[0] = _order_rec(0, expected[0], {"intent": "refund", "order_id": "WRONG"})
    mixed[1] = _order_rec(1, expected[1], None)
    row = summarize(mixed, {}, {})
    assert row["acc_order_id"] == pytest.approx(7 / 9)
    assert row["acc_intent"] == pytest.approx(29 / 30)
