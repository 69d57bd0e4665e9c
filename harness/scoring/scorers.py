"""Scorers: format validity, accuracy (whole answer and per field), macro-F1, latency, tokens, cost."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Any

import jsonschema

from harness.records import Record

_decoder = json.JSONDecoder()


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


@dataclass
class Scorer:
    """Scores one raw answer against the task's schema and the item's expected answer."""

    schema: dict[str, Any]

    def __post_init__(self) -> None:
        cls = jsonschema.validators.validator_for(self.schema)
        self._validator = cls(self.schema)
        self._parsed: dict[str, tuple[bool, Any, bool, bool, Any, bool]] = {}

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

    def score(self, raw_text: str, expected: Any) -> tuple[Any, dict[str, Any]]:
        """Returns (parsed answer, scores). The parsed answer is the strict parse, else the extracted one.
        Callers get a fresh copy of the parsed value (the parse itself is shared between equal texts)."""
        strict_ok, strict, format_valid, extract_ok, extracted, extracted_valid = self._parse(raw_text or "")
        scores: dict[str, Any] = {
            "json_parsed": strict_ok,
            "format_valid": format_valid,
            "json_extractable": extracted_valid,
            "correct": format_valid and answers_equal(strict, expected),
            "correct_lenient": extract_ok and answers_equal(extracted, expected),
        }
        if isinstance(expected, dict):
            answer = strict if format_valid else None
            scores["fields"] = {
                k: isinstance(answer, dict) and k in answer and values_equal(answer[k], v) for k, v in expected.items()
            }
        parsed = strict if strict_ok else (extracted if extract_ok else None)
        return (copy.deepcopy(parsed) if isinstance(parsed, dict | list) else parsed), scores


def answer_issue(text: str | None, finish_reason: str | None, *, refusal: str | None = None,
                 max_tokens: int | None = None) -> str | None:
    """Why an answer cannot count as a valid one whatever its text says, or None.

    A truncated JSON answer can still parse by luck (`{"a": 1}` cut after the brace); it is still an answer
    the model did not finish, so it is format-invalid and wrong — never dropped as an error."""
    if refusal:
        return f"refused: {refusal[:200]}"
    if finish_reason == "length":
        return f"truncated at max_tokens={max_tokens} (raise run.max_tokens)" if max_tokens else "truncated"
    if finish_reason == "content_filter":
        return "stopped by the provider's content filter"
    if not (text or "").strip():
        return "empty answer"
    return None


def mark_invalid(scores: dict[str, Any]) -> dict[str, Any]:
    """Scores of an answer with an issue: format-invalid and wrong (lenient extraction is left as found)."""
    scores["format_valid"] = False
    scores["correct"] = False
    if isinstance(scores.get("fields"), dict):
        scores["fields"] = {k: False for k in scores["fields"]}
    return scores


def values_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, str) and isinstance(b, str):
        return a.strip() == b.strip()
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def answers_equal(answer: Any, expected: Any) -> bool:
    """The whole answer is right when every expected field matches (extra optional fields are ignored)."""
    if isinstance(expected, dict):
        return isinstance(answer, dict) and all(k in answer and values_equal(answer[k], v) for k, v in expected.items())
    return values_equal(answer, expected)


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


def summarize(records: list[Record], label_fields: dict[str, list[Any]], expected: dict[str, Any]) -> dict[str, Any]:
    """One summary row for the records of one variant.

    Every record is in the denominator: an unanswered call (error) counts as not valid and not correct, so a
    variant that fails or rambles can never look better than one that answers. `accuracy_answered` is the
    share among answered calls, kept as an extra column."""
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

    def share(key: str, among: list[Record] = records) -> float | None:
        return sum(1 for r in among if r.scores.get(key)) / len(among) if among else None

    row["format_valid"] = share("format_valid")
    row["json_extractable"] = share("json_extractable")
    row["accuracy"] = share("correct")
    row["accuracy_lenient"] = share("correct_lenient")
    row["accuracy_answered"] = share("correct", answered)
    fields = sorted({f for r in answered for f in (r.scores.get("fields") or {})})
    for f in fields:
        row[f"acc_{f}"] = sum(1 for r in answered if (r.scores.get("fields") or {}).get(f)) / n
    for f in label_fields:
        pairs = []
        for r in records:
            exp = expected.get(r.item_id)
            if not isinstance(exp, dict) or f not in exp:
                continue
            pred = r.parsed.get(f) if (r.scores.get("format_valid") and isinstance(r.parsed, dict)) else None
            pairs.append((exp[f], pred))
        row[f"macro_f1_{f}"] = macro_f1(pairs)
    row.update(_latency_tokens(records, answered))
    row.update(_costs(answered))
    retr = [r for r in records if "recall_at_k" in r.scores]
    if retr:
        row["recall_at_k"] = _mean([r.scores["recall_at_k"] for r in retr])
        row["mrr"] = _mean([r.scores["mrr"] for r in retr])
    return row


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
    n_correct = sum(1 for r in answered if r.scores.get("correct"))
    return {
        "cost_per_request_usd": per_request,
        "cost_per_1k_usd": per_request * 1000 if per_request is not None else None,
        "cost_per_correct_usd": (sum(costs) / n_correct) if priced and n_correct else None,
        "cost_unknown": len(answered) - len(costs),
    }
