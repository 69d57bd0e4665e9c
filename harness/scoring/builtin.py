"""The built-in scorers: exact, partial (per-field credit), f1, number, contains, regex, similarity.

Shared rules, so a table never flatters a broken answer:
- a field of a JSON answer is read only from a format-valid answer (as the core per-field scores do); an
  invalid answer scores 0;
- a value the *item* lacks (no expected field, no `metadata.facts`) makes the score unknown (None), since the
  answer cannot be judged; an unknown score is left out of the mean and counted apart, never taken as 0.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any, Literal

from pydantic import Field, PrivateAttr, model_validator

from harness.records import Score
from harness.scoring.base import (
    FieldMixin,
    ScoreContext,
    ScorerSpec,
    TaskInfo,
    answer_field,
    answer_text,
    check_template,
    expand_template,
    expected_field,
    get_path,
    missing,
)
from harness.scoring.scorers import acceptable_texts, text_matches, values_equal

INVALID = "format-invalid answer (a field is read only from a valid answer)"


def _short(value: Any, n: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= n else text[: n - 1] + "…"


class Exact(FieldMixin, ScorerSpec):
    """The default scorer, named: exact per field for JSON (arrays with `uniqueItems: true` as sets), normalised
    match for free text. With `field:`, one field only."""

    scorer: Literal["exact"]
    _schema: dict[str, Any] | None = PrivateAttr(default=None)

    def bind(self, task: TaskInfo) -> None:
        self.check_field(task)
        self._schema = task.field_schema(self.field) if self.field else task.schema

    def score(self, ctx: ScoreContext) -> Score:
        if ctx.free_text:
            ok = bool(ctx.raw_text.strip()) and text_matches(ctx.raw_text, ctx.expected)
            return Score(float(ok), "matches an acceptable answer" if ok else "matches no acceptable answer")
        exp = expected_field(ctx, self.field) if self.field else ctx.expected
        if missing(exp):
            return Score(None, f"the item's expected answer has no {self.field}")
        if not ctx.format_valid:
            return Score(0.0, INVALID)
        got = answer_field(ctx, self.field) if self.field else ctx.answer
        if missing(got):
            return Score(0.0, f"the answer has no {self.field}")
        if isinstance(exp, dict) and not self.field:
            props = (self._schema or {}).get("properties") or {}
            ok = isinstance(got, dict) and all(k in got and values_equal(got[k], v, props.get(k)) for k, v in exp.items())
        else:
            ok = values_equal(got, exp, self._schema)
        return Score(float(ok), "equal" if ok else f"{_short(got)} != {_short(exp)}")

    def describe(self) -> str:
        return f"exact match of {self.field}" if self.field else "exact / normalised match"


class Partial(ScorerSpec):
    """Per-field partial credit: the share of the expected fields (or of `fields:`) the answer gets right."""

    scorer: Literal["partial"]
    fields: list[str] | None = Field(default=None, min_length=1)
    _props: dict[str, Any] = PrivateAttr(default_factory=dict)

    def bind(self, task: TaskInfo) -> None:
        if task.free_text:
            raise ValueError("partial credit is per field of a JSON answer; this task is free text (no output_schema)")
        for f in self.fields or []:
            if task.schema and task.schema.get("properties") and task.field_schema(f) is None:
                raise ValueError(f"field {f!r} is not in output_schema")
        self._props = (task.schema or {}).get("properties") or {}

    def score(self, ctx: ScoreContext) -> Score:
        if not isinstance(ctx.expected, dict):
            return Score(None, "the expected answer is not a JSON object")
        names = self.fields or list(ctx.expected)
        names = [n for n in names if n in ctx.expected]
        if not names:
            return Score(None, "the expected answer has none of the fields")
        if not ctx.format_valid or not isinstance(ctx.answer, dict):
            return Score(0.0, INVALID)
        right = [n for n in names if n in ctx.answer and values_equal(ctx.answer[n], ctx.expected[n], self._props.get(n))]
        wrong = [n for n in names if n not in right]
        why = f"{len(right)} of {len(names)} fields right" + (f"; wrong: {', '.join(wrong)}" if wrong else "")
        return Score(len(right) / len(names), why)

    def describe(self) -> str:
        return "per-field partial credit" + (f" ({', '.join(self.fields)})" if self.fields else "")


def _label_key(value: Any) -> str:
    return value.strip() if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


class F1(FieldMixin, ScorerSpec):
    """Multi-label F1 of one array field: per answer, F1 of the predicted vs the expected set (both empty: 1).
    The summary adds the micro F1 over all answers (`score_<name>_micro`, from each record's tp/fp/fn)."""

    scorer: Literal["f1"]

    def bind(self, task: TaskInfo) -> None:
        self.check_field(task, required=True)
        sch = task.field_schema(self.field or "")
        if sch is not None and sch.get("type") not in (None, "array") and "array" not in (sch.get("type") or []):
            raise ValueError(f"f1 scores an array field; {self.field!r} is of type {sch.get('type')!r}")

    def zero(self, expected: Any, why: str) -> Score:
        exp = get_path(expected, self.field or "")
        n = 0 if missing(exp) or exp is None else len({_label_key(v) for v in (exp if isinstance(exp, list) else [exp])})
        return Score(0.0, why, {"tp": 0, "fp": 0, "fn": n})

    def score(self, ctx: ScoreContext) -> Score:
        assert self.field is not None
        exp = expected_field(ctx, self.field)
        if missing(exp):
            return Score(None, f"the item's expected answer has no {self.field}")
        exp_set = {_label_key(v) for v in (exp if isinstance(exp, list) else [] if exp is None else [exp])}
        if not ctx.format_valid:
            return Score(0.0, INVALID, {"tp": 0, "fp": 0, "fn": len(exp_set)})
        got = answer_field(ctx, self.field)
        got_list = [] if missing(got) or got is None else (got if isinstance(got, list) else [got])
        got_set = {_label_key(v) for v in got_list}
        tp, fp, fn = len(got_set & exp_set), len(got_set - exp_set), len(exp_set - got_set)
        f1 = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
        parts = [f"tp={tp} fp={fp} fn={fn}"]
        if got_set - exp_set:
            parts.append("extra: " + ", ".join(sorted(got_set - exp_set)))
        if exp_set - got_set:
            parts.append("missed: " + ", ".join(sorted(exp_set - got_set)))
        return Score(f1, "; ".join(parts), {"tp": tp, "fp": fp, "fn": fn})

    def describe(self) -> str:
        return f"multi-label F1 of {self.field}"


_CURRENCY = "$€£¥₹"
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_FIRST_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][+-]?\d+)?|[+-]?\.\d+")


def to_number(value: Any) -> float | None:
    """A number from a JSON number or a string that is one: "12.50", " 1,234.5 ", "$12", "15%" (-> 15),
    "−3" (Unicode minus), full-width digits (NFKC). Booleans are not numbers. A decimal comma ("12,5") is
    ambiguous with a thousands separator and is not read (None)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    s = unicodedata.normalize("NFKC", value).strip().replace("\u2212", "-")
    s = s.rstrip("%").strip()
    sign = ""
    if s[:1] in "+-" and s[1:2] in _CURRENCY and s[1:2]:
        sign, s = s[0], s[1:]
    s = sign + s.lstrip(_CURRENCY).strip()
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    try:
        f = float(s)
    except ValueError:
        return None
    return f if math.isfinite(f) else None


class Number(FieldMixin, ScorerSpec):
    """A numeric answer within `tolerance` of the expected one (absolute; `relative: true` for a share of the
    expected value). Numbers written as strings count ("12.50"). An expected null is right only when the answer
    is null too. Free text: the whole answer must be a number, or with `extract: true` its first number."""

    scorer: Literal["number"]
    tolerance: float = Field(default=0.0, ge=0)
    relative: bool = False
    extract: bool = False

    def bind(self, task: TaskInfo) -> None:
        self.check_field(task, required=False)

    def _answer(self, ctx: ScoreContext) -> tuple[Any, bool]:
        """(answer value, present)."""
        if self.field is None:
            if not ctx.free_text:
                return ctx.answer if ctx.format_valid else None, ctx.format_valid
            text = ctx.raw_text
            if self.extract:
                m = _FIRST_NUMBER.search(unicodedata.normalize("NFKC", text).replace("\u2212", "-"))
                return (m.group(0) if m else None), m is not None
            return text, True
        got = answer_field(ctx, self.field)
        return (None, False) if missing(got) else (got, True)

    def score(self, ctx: ScoreContext) -> Score:
        exp = expected_field(ctx, self.field) if self.field else ctx.expected
        if missing(exp):
            return Score(None, f"the item's expected answer has no {self.field}")
        if not ctx.free_text and not ctx.format_valid:
            return Score(0.0, INVALID)
        got, present = self._answer(ctx)
        if not present:
            return Score(0.0, "no number in the answer" if ctx.free_text else f"the answer has no {self.field}")
        exps = exp if (ctx.free_text and isinstance(exp, list)) else [exp]
        if all(e is None for e in exps):
            return Score(float(got is None), "null expected" + (", null given" if got is None else
                                                                       f", {_short(got)} given"))
        target = [to_number(e) for e in exps]
        if all(t is None for t in target):
            return Score(None, f"the expected value {_short(exp)} is not a number")
        value = to_number(got)
        if value is None:
            return Score(0.0, f"{_short(got) if got is not None else 'null'} is not a number")
        best = min((abs(value - t), t) for t in target if t is not None)
        allowed = self.tolerance * abs(best[1]) if self.relative else self.tolerance
        ok = best[0] <= allowed + 1e-9 * max(1.0, abs(best[1]))
        return Score(float(ok), f"{value:g} vs expected {best[1]:g} (off by {best[0]:g}, "
                                      f"tolerance {allowed:g})")

    def describe(self) -> str:
        what = self.field or "the answer"
        tol = f"{self.tolerance:g}" + (" relative" if self.relative else "")
        return f"number {what} within {tol}"


def _text_key(text: str, ignore_case: bool) -> str:
    text = re.sub(r"\s+", " ", unicodedata.normalize("NFC", text))
    return text.casefold() if ignore_case else text


class Contains(FieldMixin, ScorerSpec):
    """The answer contains some texts: `any:` one of them (1/0), `all:` each of them (the share found: partial
    credit), `none:` none of them (1/0). Texts are templates of the item (`"{expected.doc_title}"`,
    `"{metadata.facts}"` — a list expands into one text per element). Whitespace runs are one space;
    `ignore_case: true` by default."""

    scorer: Literal["contains"]
    any: list[str] | None = Field(default=None, min_length=1)
    all: list[str] | None = Field(default=None, min_length=1)
    none: list[str] | None = Field(default=None, min_length=1)
    ignore_case: bool = True

    @model_validator(mode="after")
    def _one_mode(self) -> Contains:
        given = [k for k in ("any", "all", "none") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of any:, all:, none: (a list of texts)")
        return self

    @property
    def mode(self) -> str:
        return "any" if self.any is not None else "all" if self.all is not None else "none"

    @property
    def templates(self) -> list[str]:
        return self.any or self.all or self.none or []

    def bind(self, task: TaskInfo) -> None:
        self.check_field(task)
        for t in self.templates:
            check_template(t)

    def score(self, ctx: ScoreContext) -> Score:
        needles: list[str] = []
        for t in self.templates:
            texts = expand_template(t, ctx.item)
            if texts is None:
                return Score(None, f"the item has no value for {t!r}")
            needles += [x for x in texts if x.strip()]
        if not needles:
            return Score(None, "no texts to look for on this item")
        text = answer_text(ctx, self.field)
        if text is None:
            return Score(0.0, INVALID if not ctx.format_valid else f"the answer has no {self.field}")
        hay = _text_key(text, self.ignore_case)
        found = [n for n in needles if _text_key(n, self.ignore_case).strip() in hay]
        lost = [n for n in needles if n not in found]
        if self.mode == "any":
            return Score(float(bool(found)), f"found {_short(found[0])!r}" if found else
                               f"none of {len(needles)} found")
        if self.mode == "none":
            return Score(float(not found), f"found {_short(found[0])!r}" if found else "none found")
        why = f"{len(found)} of {len(needles)} found" + (f"; missing: {'; '.join(_short(x, 40) for x in lost)}"
                                                         if lost else "")
        return Score(len(found) / len(needles), why)

    def describe(self) -> str:
        return f"contains {self.mode} of {', '.join(self.templates)}"


class Regex(FieldMixin, ScorerSpec):
    """The answer matches `pattern` (Python `re.search`; `full: true` for the whole text; `negate: true` passes
    when it does not match, e.g. `pattern: "!"` for "no exclamation marks")."""

    scorer: Literal["regex"]
    pattern: str = Field(min_length=1)
    ignore_case: bool = False
    multiline: bool = False
    full: bool = False
    negate: bool = False
    _compiled: re.Pattern[str] | None = PrivateAttr(default=None)

    def bind(self, task: TaskInfo) -> None:
        self.check_field(task)
        flags = (re.IGNORECASE if self.ignore_case else 0) | (re.MULTILINE if self.multiline else 0)
        try:
            self._compiled = re.compile(self.pattern, flags)
        except re.error as exc:
            raise ValueError(f"pattern {self.pattern!r} is not a valid regular expression: {exc}") from None

    def score(self, ctx: ScoreContext) -> Score:
        assert self._compiled is not None
        text = answer_text(ctx, self.field)
        if text is None:
            return Score(0.0, INVALID if not ctx.format_valid else f"the answer has no {self.field}")
        m = self._compiled.fullmatch(text) if self.full else self._compiled.search(text)
        ok = (m is None) if self.negate else (m is not None)
        seen = f"matched {_short(m.group(0), 40)!r}" if m is not None else "no match"
        return Score(float(ok), seen)

    def describe(self) -> str:
        return f"{'does not match' if self.negate else 'matches'} /{self.pattern}/"


class Similarity(FieldMixin, ScorerSpec):
    """Cosine similarity of the embedded MiniLM (harness.retrieval.embeddings) between the answer and the
    reference text (the expected text, the best of a list; or `reference:`, a template of the item): 1 when at
    least `threshold`, else 0. `threshold: null` scores the cosine itself (clipped to 0..1)."""

    scorer: Literal["similarity"]
    threshold: float | None = Field(default=0.8, ge=-1, le=1)
    reference: str | None = None
    _vectors: dict[str, Any] = PrivateAttr(default_factory=dict)

    def bind(self, task: TaskInfo) -> None:
        self.check_field(task)
        if self.reference is not None:
            check_template(self.reference)
        elif not task.free_text and self.field is None:
            raise ValueError("on a JSON task, give `field:` (an answer field holding text) or `reference:` "
                             "(a template such as \"{metadata.reference}\")")

    def references(self, ctx: ScoreContext) -> list[str] | None:
        if self.reference is not None:
            return expand_template(self.reference, ctx.item)
        exp = expected_field(ctx, self.field) if self.field else ctx.expected
        if missing(exp) or exp is None:
            return None
        if self.field is None:
            return acceptable_texts(exp) or None
        return acceptable_texts(exp) or [json.dumps(exp, ensure_ascii=False)]

    def warm(self, texts: list[str]) -> None:
        """Embed many texts in one batch (the suite calls this before scoring a batch of records)."""
        todo = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if todo:
            from harness.retrieval.embeddings import embed

            for t, v in zip(todo, embed(todo), strict=True):
                self._vectors[t] = v

    def _vec(self, text: str) -> Any:
        if text not in self._vectors:
            self.warm([text])
        return self._vectors[text]

    def score(self, ctx: ScoreContext) -> Score:
        refs = self.references(ctx)
        if not refs:
            return Score(None, "no reference text for this item")
        text = answer_text(ctx, self.field)
        if text is None or not text.strip():
            return Score(0.0, "no answer text" if ctx.format_valid else INVALID)
        vec = self._vec(text)
        cos = max(float(vec @ self._vec(r)) for r in refs)
        if self.threshold is None:
            return Score(min(1.0, max(0.0, cos)), f"cosine {cos:.3f}")
        ok = cos >= self.threshold
        return Score(float(ok), f"cosine {cos:.3f} {'>=' if ok else '<'} {self.threshold:g}")

    def describe(self) -> str:
        tail = f" >= {self.threshold:g}" if self.threshold is not None else ""
        return f"MiniLM cosine to the {'reference' if self.reference else 'expected text'}{tail}"

