"""The core scores of every answer: format validity, exact/normalised match (whole answer and per field),
macro-F1, latency, tokens, cost. The named scorers of a task's `scoring:` list live beside this module
(builtin.py, judge.py, python_scorer.py) and are combined with these by harness.scoring.suite."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

import jsonschema

from harness.data.text import match_key
from harness.data.tool_spec import argument_keys, expected_calls
from harness.records import Record, Score, ScoreError
from harness.scoring.labels import labelled_flags

_decoder = json.JSONDecoder()
AGREEMENT = "agreement"  # the score against a reference's answers (harness.scoring.reference), in record.scores


def extract_json(text: str) -> tuple[bool, Any]:
    """Find the first JSON object or array inside surrounding text (prose, code fences, trailing chatter)."""
    for start, ch in enumerate(text):
        if ch in "{[":
            try:
                value, _ = _decoder.raw_decode(text, start)
            except json.JSONDecodeError:
                continue
            return True, value
    return False, None


@dataclass(frozen=True)
class Checks:
    """The core checks of one answer; the record keeps each in its field of the same name (harness.records).

    json_parsed / json_extractable / fields apply to JSON tasks only (None on a free-text task, so no table
    shows it as "0% JSON"); fields is None too where the expected answer is not a JSON object."""

    format_valid: bool
    correct: bool
    correct_lenient: bool
    json_parsed: bool | None = None
    json_extractable: bool | None = None
    fields: dict[str, bool] | None = None

    def invalid(self) -> Checks:
        """The checks of an answer with an issue: format-invalid and wrong (lenient extraction is left as found)."""
        wrong = {k: False for k in self.fields} if self.fields is not None else None
        return dataclasses.replace(self, format_valid=False, correct=False, fields=wrong)

    def write(self, rec: Record) -> None:
        for f in dataclasses.fields(self):
            setattr(rec, f.name, getattr(self, f.name))


@dataclass
class Scorer:
    """Scores one raw answer against the task's schema and the item's expected answer.

    With a schema (a JSON task) the answer must parse and validate, and is compared field by field.
    Without one (`output_schema` left out of task.yaml: a free-text task) the answer is the raw text: it is
    format-valid when it is not empty (after stripping whitespace), since a free-text answer has no format to
    break except saying nothing, and it is correct when its `match_key` equals that of the expected string or of
    any string in a list of acceptable ones."""

    schema: dict[str, Any] | None

    def __post_init__(self) -> None:
        if self.schema is not None:
            cls = jsonschema.validators.validator_for(self.schema)
            self._validator = cls(self.schema)
        self._parsed: dict[str, tuple[bool, Any, bool, bool, Any, bool]] = {}

    @property
    def free_text(self) -> bool:
        return self.schema is None

    def _valid(self, value: Any) -> bool:
        return self._validator.is_valid(value)

    def _parse(self, raw_text: str) -> tuple[bool, Any, bool, bool, Any, bool]:
        """Parsing and schema validation depend on the text alone, and answers repeat a lot (enum labels),
        so each distinct text is validated once per run."""
        hit = self._parsed.get(raw_text)
        if hit is not None:
            return hit
        strict_ok, strict = True, None
        try:
            strict = json.loads(raw_text)
        except (json.JSONDecodeError, TypeError):
            strict_ok = False
        format_valid = strict_ok and self._valid(strict)
        if strict_ok:
            extract_ok, extracted = True, strict
        else:
            extract_ok, extracted = extract_json(raw_text or "")
        extracted_valid = extract_ok and (format_valid if strict_ok else self._valid(extracted))
        out = (strict_ok, strict, format_valid, extract_ok, extracted, extracted_valid)
        if len(self._parsed) < 100_000:
            self._parsed[raw_text] = out
        return out

    def score(self, raw_text: str, expected: Any) -> tuple[Any, Checks]:
        """Returns (parsed answer, checks). The parsed answer is the strict parse, else the extracted one
        (the raw text for a free-text task). Callers get a fresh copy of the parsed value (the parse itself is
        shared between equal texts)."""
        if self.schema is None:
            return raw_text, text_scores(raw_text, expected)
        strict_ok, strict, format_valid, extract_ok, extracted, extracted_valid = self._parse(raw_text or "")
        fields = None
        if isinstance(expected, dict):
            answer = strict if format_valid else None
            props = self.schema.get("properties") or {}
            fields = {
                k: isinstance(answer, dict) and k in answer and values_equal(answer[k], v, props.get(k))
                for k, v in expected.items()
            }
        checks = Checks(format_valid=format_valid,
                        correct=format_valid and answers_equal(strict, expected, self.schema),
                        correct_lenient=extract_ok and answers_equal(extracted, expected, self.schema),
                        json_parsed=strict_ok, json_extractable=extracted_valid, fields=fields)
        parsed = strict if strict_ok else (extracted if extract_ok else None)
        return (copy.deepcopy(parsed) if isinstance(parsed, dict | list) else parsed), checks


def acceptable_texts(expected: Any) -> list[str]:
    """The acceptable answers of a free-text item: one string, or a list of them."""
    if isinstance(expected, str):
        return [expected]
    if isinstance(expected, list):
        return [e for e in expected if isinstance(e, str)]
    return []


def text_matches(answer: str | None, expected: Any) -> bool:
    """Normalised match (`harness.data.text.match_key`) against any acceptable answer."""
    if answer is None:
        return False
    key = match_key(answer)
    return any(key == match_key(e) for e in acceptable_texts(expected))


def text_scores(raw_text: str | None, expected: Any) -> Checks:
    """Core checks of a free-text answer. The JSON checks do not apply and are left out (None), so no table
    shows a free-text task as "0% JSON"."""
    valid = bool((raw_text or "").strip())
    correct = valid and text_matches(raw_text, expected)
    return Checks(format_valid=valid, correct=correct, correct_lenient=correct)


def answer_issue(text: str | None, finish_reason: str | None, *, refusal: str | None = None,
                 max_tokens: int | None = None, tool_calls: list[Any] | None = None) -> str | None:
    """Why an answer cannot count as a valid one whatever its text says, or None.

    A truncated JSON answer can still parse by luck (`{"a": 1}` cut after the brace); it is still an answer
    the model did not finish, so it is format-invalid and wrong — never dropped as an error."""
    if refusal:
        return f"refused: {refusal[:200]}"
    if finish_reason == "length":
        return f"truncated at max_tokens={max_tokens} (raise run.max_tokens)" if max_tokens else "truncated"
    if finish_reason == "content_filter":
        return "stopped by the provider's content filter"
    if not (text or "").strip() and not tool_calls:  # a call is an answer without text
        return "empty answer"
    return None


def values_equal(a: Any, b: Any, schema: dict[str, Any] | None = None) -> bool:
    """Exact match with three allowances: strings are compared without surrounding whitespace, numbers
    within 1e-9, and an array whose schema says `uniqueItems: true` is a set (order does not count: a
    multi-label answer listing the right labels in another order is right). `schema` is the JSON Schema of
    `b`'s position, followed into `properties` and `items`; a `$ref` is not followed (compared in order)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, str) and isinstance(b, str):
        return a.strip() == b.strip()
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    schema = schema if isinstance(schema, dict) else {}
    if isinstance(a, dict) and isinstance(b, dict):
        props = schema.get("properties") or {}
        return a.keys() == b.keys() and all(values_equal(a[k], b[k], props.get(k)) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        sub = schema.get("items") if isinstance(schema.get("items"), dict) else None
        if schema.get("uniqueItems") is True:
            return (all(any(values_equal(x, y, sub) for y in b) for x in a)
                    and all(any(values_equal(x, y, sub) for x in a) for y in b))
        return len(a) == len(b) and all(values_equal(x, y, sub) for x, y in zip(a, b, strict=True))
    return a == b


def answers_equal(answer: Any, expected: Any, schema: dict[str, Any] | None = None) -> bool:
    """The whole answer is right when every expected field matches (extra optional fields are ignored)."""
    if isinstance(expected, dict):
        props = (schema or {}).get("properties") or {}
        return isinstance(answer, dict) and all(k in answer and values_equal(answer[k], v, props.get(k))
                                                for k, v in expected.items())
    return values_equal(answer, expected, schema)


def macro_f1(pairs: list[tuple[Any, Any]]) -> float | None:
    """Macro-averaged F1 over the classes seen in the expected or predicted labels."""
    if not pairs:
        return None
    key = json.dumps
    classes = {key(t) for t, _ in pairs} | {key(p) for _, p in pairs if p is not None}
    f1s = []
    for c in sorted(classes):  # a fixed order: the float sum must not depend on string hashing
        tp = sum(1 for t, p in pairs if key(t) == c and p is not None and key(p) == c)
        fp = sum(1 for t, p in pairs if key(t) != c and p is not None and key(p) == c)
        fn = sum(1 for t, p in pairs if key(t) == c and (p is None or key(p) != c))
        denom = 2 * tp + fp + fn
        f1s.append(2 * tp / denom if denom else 0.0)
    return sum(f1s) / len(f1s)


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def primary_value(rec: Record) -> float | None:
    """The record's primary score as every table reads it: what harness.scoring.suite wrote (None = unknown),
    and 0 for a call that never answered (it is in the denominator). Runs written before primary scores
    existed read exact match as their primary (harness.records.upgrade_layout)."""
    if rec.error is not None:
        return 0.0
    return None if rec.primary is None else float(rec.primary)


def named_value(rec: Record, name: str) -> float | None:
    """A named scorer's value on a record: None where it is unknown, failed (a ScoreError) or absent."""
    score = rec.scores.get(name)
    return None if score is None else score.value


def named_outcome(rec: Record, name: str) -> Score | ScoreError | None:
    """A named scorer's Score or ScoreError on a record, or None."""
    return rec.scores.get(name) or rec.score_errors.get(name)


def _known_mean(values: list[float | None]) -> tuple[float | None, int]:
    """(mean of the known values, how many are unknown)."""
    known = [v for v in values if v is not None]
    return (sum(known) / len(known) if known else None), len(values) - len(known)


def summarize(records: list[Record], label_fields: dict[str, list[Any]], expected: dict[str, Any],
              scoring: dict[str, Any] | None = None) -> dict[str, Any]:
    """One summary row for the records of one variant.

    Every record is in the denominator: an unanswered call (error) counts as not valid and not correct, so a
    variant that fails or rambles can never look better than one that answers. `accuracy_answered` is the
    share among answered calls, kept as an extra column.

    `accuracy` is the mean of the primary score (`scoring["primary"]`, the manifest's; default exact /
    normalised match, then it is the share correct) over the records whose value is known; `accuracy_unknown`
    counts the others (a judge that failed), which are left out rather than taken as 0. Records of items without
    an expected answer (scored by agreement with a reference) are in neither: where there are some, the row says
    how many items each side has (`accuracy_items`, `unlabelled`). Each named scorer gets
    `score_<name>` (same rule) and `score_<name>_unknown`; an f1 scorer also `score_<name>_micro` (F1 of the
    pooled tp/fp/fn). Judge calls are evaluation cost: `eval_cost_usd` (their total), `eval_calls`,
    `eval_cost_unknown` — never part of cost per request."""
    n = len(records)
    answered = [r for r in records if r.error is None]
    n_ok = len(answered)
    row: dict[str, Any] = {
        "n": n,
        "errors": n - n_ok,
        "error_rate": (n - n_ok) / n if n else None,
        "answered": n_ok,
        "answer_issues": sum(1 for r in answered if r.answer_issue),
        "truncated": sum(1 for r in answered if r.finish_reason == "length"),
    }

    def share(check: str, among: list[Record] = records) -> float | None:
        return sum(1 for r in among if getattr(r, check)) / len(among) if among else None

    scoring = scoring or {}
    primary = scoring.get("primary") or "exact"
    row["primary"] = primary
    row["format_valid"] = share("format_valid")
    # A free-text task has no JSON to extract: the column stays empty rather than reading 0%.
    row["json_extractable"] = (share("json_extractable")
                               if any(r.json_extractable is not None for r in answered) or not answered else None)
    # accuracy is over the items with an expected answer; those without are counted apart (`unlabelled`)
    scored = [r for r, measured in zip(records, labelled_flags(records), strict=True) if measured]
    row["accuracy"], row["accuracy_unknown"] = _known_mean([primary_value(r) for r in scored])
    row["accuracy_lenient"] = share("correct_lenient", scored)
    scored_answered = [r for r in scored if r.error is None]
    row["accuracy_answered"] = _known_mean([primary_value(r) for r in scored_answered])[0] if answered else None
    if primary != "exact":
        row["accuracy_exact"] = share("correct", scored)
    if len(scored) < n:
        ids = {r.item_id for r in scored}
        row["accuracy_items"], row["unlabelled"] = len(ids), len({r.item_id for r in records} - ids)
    row.update(_field_accuracy(records, answered))
    for f in label_fields:
        pairs = []
        for r in records:
            exp = expected.get(r.item_id)
            if not isinstance(exp, dict) or f not in exp:
                continue
            pred = r.parsed.get(f) if (r.format_valid and isinstance(r.parsed, dict)) else None
            pairs.append((exp[f], pred))
        row[f"macro_f1_{f}"] = macro_f1(pairs)
    names = _scorer_names(records, scoring)
    row.update(_named_scores(records, scoring, names))
    row.update(_latency_tokens(records, answered))
    row.update(_costs(answered))
    row.update(_eval_costs(records, names))
    retr = [r.retrieval for r in records if r.retrieval is not None]
    if retr:
        row["recall_at_k"] = _mean([m.recall_at_k for m in retr if m.recall_at_k is not None])
        row["mrr"] = _mean([m.mrr for m in retr if m.mrr is not None])
    row.update(bad_answer_counts(answered))
    return row


def bad_answer_counts(answered: list[Record]) -> dict[str, int]:
    """Answers that are wrong by construction, by cause, so the reports can say what to change (the truncated
    ones are `truncated`): refused, empty, stopped by a content filter, and answers without such an issue
    that are still format-invalid (not JSON, or JSON that does not match the schema)."""
    issues = [r.answer_issue or "" for r in answered]
    return {
        "refused": sum(1 for i in issues if i.startswith("refused")),
        "empty_answers": sum(1 for i in issues if i == "empty answer"),
        "content_filtered": sum(1 for r in answered if r.finish_reason == "content_filter"),
        "unparseable": sum(1 for r in answered if not r.answer_issue and not r.format_valid),
    }


def _field_accuracy(records: list[Record], answered: list[Record]) -> dict[str, Any]:
    """acc_<field>: the share right among the records whose expected answer has that field (an optional field
    expected by 9 of 30 items is scored over those 9; an unanswered one of them counts as wrong)."""
    fields = sorted({f for r in answered for f in (r.fields or {})})
    out: dict[str, Any] = {}
    for f in fields:
        expecting = [r for r in records if _expects_field(r.expected, f)]
        right = sum(1 for r in expecting if r.error is None and (r.fields or {}).get(f))
        out[f"acc_{f}"] = right / len(expecting) if expecting else None
    return out


def _expects_field(expected: Any, f: str) -> bool:
    """Whether an expected answer has field `f`: a key of a JSON answer, or an argument of an expected call."""
    return isinstance(expected, dict) and (f in expected or f in argument_keys(expected_calls(expected) or []))


def _latency_tokens(records: list[Record], answered: list[Record]) -> dict[str, Any]:
    # Cache hits answer in microseconds; counting them would fake the latency users will see.
    lat = [r.latency_s for r in answered if r.latency_s is not None and not r.cache_hit]
    usages = [r.usage for r in answered if r.usage is not None]
    return {
        "latency_p50_s": percentile(lat, 50),
        "latency_p95_s": percentile(lat, 95),
        "latency_n": len(lat),
        "cache_hits": sum(1 for r in records if r.cache_hit),
        "prompt_tokens_mean": _mean([u.prompt_tokens for u in usages]),
        "completion_tokens_mean": _mean([u.completion_tokens for u in usages]),
        # Hidden reasoning tokens: part of completion_tokens (and billed as output), shown on their own.
        "reasoning_tokens_mean": _mean([u.reasoning_tokens for u in usages]),
    }


def _costs(answered: list[Record]) -> dict[str, Any]:
    """Every answered call was billed, truncated and wrong ones included. One answer without a known cost
    (no usage returned, no price) makes the variant's cost unknown rather than quietly lower."""
    costs = [r.cost_usd for r in answered if r.cost_usd is not None]
    priced = len(costs) == len(answered) and len(answered) > 0
    per_request = _mean(costs) if priced else None
    n_correct = sum(primary_value(r) or 0.0 for r in answered)  # a graded primary: per unit of score
    return {
        "cost_per_request_usd": per_request,
        "cost_per_1k_usd": per_request * 1000 if per_request is not None else None,
        "cost_per_correct_usd": (sum(costs) / n_correct) if priced and n_correct else None,
        "cost_unknown": len(answered) - len(costs),
    }


def _scorer_names(records: list[Record], scoring: dict[str, Any]) -> list[str]:
    """The named scorers: the manifest's, in its order, then any other a record holds."""
    specs = [s["name"] for s in scoring.get("scorers") or []]
    seen = dict.fromkeys(k for r in records for k in (*r.scores, *r.score_errors) if k != AGREEMENT)
    return specs + [n for n in seen if n not in specs]


def _detail(rec: Record, name: str) -> dict[str, Any]:
    outcome = named_outcome(rec, name)
    return outcome.detail if outcome is not None else {}


def _named_scores(records: list[Record], scoring: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """score_<name> per named scorer. A record without an answer (error) keeps no scores and counts as 0 here,
    on every score: every record is in the denominator; a scorer that failed (ScoreError) counts as unknown."""
    specs = {s["name"]: s for s in scoring.get("scorers") or []}
    row: dict[str, Any] = {}
    for name in names:
        values = [0.0 if r.error is not None else named_value(r, name) for r in records]
        row[f"score_{name}"], row[f"score_{name}_unknown"] = _known_mean(values)
        spec = specs.get(name) or {}
        counts = [_detail(r, name) for r in records]
        if spec.get("scorer") == "f1" or any("tp" in c for c in counts):  # micro F1 over pooled label decisions
            tp, fp, fn = (sum(int(c.get(k) or 0) for c in counts) for k in ("tp", "fp", "fn"))
            fn += sum(_label_count(r.expected, spec.get("field")) for r in records if r.error is not None)
            row[f"score_{name}_micro"] = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    return row


def _label_count(expected: Any, field: str | None) -> int:
    """How many distinct labels an unanswered record missed (its false negatives for micro F1)."""
    value = expected
    for part in (field or "").split(".") if field else []:
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return 0
    return len({json.dumps(v, sort_keys=True) for v in (value if isinstance(value, list) else [value])})


def _eval_costs(records: list[Record], names: list[str]) -> dict[str, Any]:
    """Evaluation cost: what the model-graded scorers' calls cost (priced like any call, cache hits included,
    as the variants' are), apart from the variants' own cost. A call's detail keeps its cost and count."""
    calls = [e for r in records for e in (_detail(r, n) for n in names) if e.get("request")]
    if not calls:
        return {}
    costs = [e.get("cost_usd") for e in calls]
    known = [c for c in costs if c is not None]
    # a verdict cut off at max_tokens and asked again took two calls (its cost_usd is their total)
    return {"eval_cost_usd": sum(known) if known else None, "eval_calls": sum(int(e.get("calls") or 1) for e in calls),
            "eval_cost_unknown": len(costs) - len(known)}
