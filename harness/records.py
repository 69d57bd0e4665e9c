"""The nouns of the harness: items, messages, completions, scores, records."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass as typed_dataclass

Message = dict[str, str]  # {"role": ..., "content": ...}


HumanScore = bool | float | dict[str, bool | float]


class HumanLabel(BaseModel):
    """A person's score of one answer to an item, to measure how well an LLM judge agrees with people.

    `answer` is the answer they scored (default: the item's expected answer); `score` is on the judge's
    scale, or a mapping judge-scorer name -> score when the task has several judges."""

    model_config = ConfigDict(extra="forbid")

    score: HumanScore
    answer: str | None = None


class EvalItem(BaseModel):
    """One line of test.jsonl / train.jsonl."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    input: dict[str, Any]
    expected: Any = None
    expected_doc_ids: list[str] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    # `human: 4` (a score of the expected answer), `human: {score: 1, answer: "..."}` or a list of those
    human: HumanScore | HumanLabel | list[HumanLabel] | None = None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    # Hidden reasoning tokens (o-series, GPT-5): already counted in completion_tokens, billed as output.
    reasoning_tokens: int = 0


class ToolCall(BaseModel):
    """One function call a model (or the application under test) made: the tool's name and its arguments as the
    JSON text it sent (kept as sent, so arguments that are not valid JSON can be scored as such)."""

    name: str
    arguments: str = "{}"
    id: str | None = None


@dataclass
class Completion:
    """What a model call returned, before scoring."""

    text: str
    usage: Usage | None  # None when the server reported no usage: the cost is then unknown, not $0
    # The attempt that answered, from when its request left (after any client-side wait) to its response.
    latency_s: float
    finish_reason: str | None = None  # as the server sent it
    model: str | None = None
    attempts: int = 1
    cache_hit: bool = False
    refusal: str | None = None  # the model's refusal message, when the server reports one (OpenAI)
    # Client-side waiting: the rate limiter's pacing and 429 pauses before attempts, backoff between them.
    wait_s: float | None = None
    tool_calls: list[ToolCall] | None = None  # the calls the answer made (`tools:` in task.yaml), in order
    # What the system under test reported itself (an application as `provider: python` / `http`): its cost for
    # this call, and the ids of the documents it retrieved (for recall@k / MRR). None: not reported.
    cost_usd: float | None = None
    retrieved_doc_ids: list[str] | None = None


@dataclass
class CallError:
    """A model call that failed after retries; kept apart from a wrong answer."""

    kind: str  # rate_limit | server_error | timeout | connection | bad_response | length | client_error
    message: str
    attempts: int = 1
    status: int | None = None
    latency_s: float | None = None  # the last attempt's time, as for Completion
    wait_s: float | None = None  # client-side waiting, as for Completion


def unknown_if_nan(value: float | None) -> float | None:
    """The one rule for unknown numbers in records: None. A NaN (an unknown that came through pandas or numpy)
    becomes None, never 0; JSON keeps it as null and reads it back as None."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _nan_to_none(obj: Any, *names: str) -> None:
    """unknown_if_nan on fields of a frozen dataclass, once per object (cheaper than a validator per field)."""
    for name in names:
        v = getattr(obj, name)
        if v is not None and v != v:
            object.__setattr__(obj, name, None)


_SCORE_CONFIG = ConfigDict(extra="forbid")


@typed_dataclass(frozen=True, slots=True, config=_SCORE_CONFIG)
class Score:
    """What one named scorer (task.yaml `scoring:`) made of one answer.

    `value` is in 0..1, or None when the scorer could not tell (an item without the value it needs, no judge
    configured): unknown, left out of means and counted apart, never 0. `explanation` says why in a line,
    `detail` keeps what it needs to be checked (a judge's prompt, verdict and usage; an f1 scorer's tp/fp/fn),
    `cost_usd` what producing it cost (judge calls: evaluation cost). `scorer` and `version` name the code that
    scored (the `scorer:` family and its version; None in runs written before scores carried them)."""

    value: float | None
    explanation: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    cost_usd: float | None = None
    scorer: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        _nan_to_none(self, "value", "cost_usd")


@typed_dataclass(frozen=True, slots=True, config=_SCORE_CONFIG)
class ScoreError:
    """A named scorer that failed on one answer (a judge call that failed or gave an unusable verdict, a
    built-in scorer that raised): never a score. The summary counts it as unknown, as a None value."""

    error: str
    detail: dict[str, Any] = field(default_factory=dict)
    cost_usd: float | None = None
    scorer: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        _nan_to_none(self, "cost_usd")


@typed_dataclass(frozen=True, slots=True, config=_SCORE_CONFIG)
class Retrieval:
    """How well a RAG variant's retrieval found the item's `expected_doc_ids`."""

    recall_at_k: float | None
    mrr: float | None

    def __post_init__(self) -> None:
        _nan_to_none(self, "recall_at_k", "mrr")


# The keys records.jsonl held in one `scores` dict before each got its own field (runs written before the
# typed score; `Record` reads them through `upgrade_layout`).
CORE_CHECKS = ("json_parsed", "format_valid", "json_extractable", "correct", "correct_lenient")
_OLD_SCORE_KEYS = frozenset({*CORE_CHECKS, "fields", "primary", "recall_at_k", "mrr"})


def is_old_layout(data: dict[str, Any]) -> bool:
    """Whether a record line was written in the layout before the typed score: one `scores` dict holding every
    score, with `explanations` and `evaluations` beside it."""
    if "explanations" in data or "evaluations" in data:
        return True
    scores = data.get("scores")
    return isinstance(scores, dict) and any(k in _OLD_SCORE_KEYS or not isinstance(v, dict | Score)
                                            for k, v in scores.items())


def _failed(value: Any, why: str, detail: dict[str, Any]) -> bool:
    """Whether an old record's unknown named score was a scorer that failed (its text says so) rather than
    one that could not tell."""
    return value is None and (why.startswith(("scorer error:", "scorer returned")) or "error" in detail)


def upgrade_layout(data: dict[str, Any]) -> dict[str, Any]:
    """A record line in the old layout -> the current one (a new dict; the line itself is left as it was).

    Old: `scores` = {json_parsed, format_valid, json_extractable, correct, correct_lenient, fields, primary,
    recall_at_k, mrr, <named scorer>: value}, `explanations` / `evaluations` = {<named scorer>: ...}. A run
    written before primary scores existed has no `primary`: exact match was the primary (1 if correct else 0).
    A named scorer's unknown value whose explanation says it failed becomes a ScoreError."""
    if not is_old_layout(data):
        return data
    out = {k: v for k, v in data.items() if k not in ("scores", "explanations", "evaluations")}
    old = dict(data.get("scores") or {})
    why = data.get("explanations") or {}
    details = data.get("evaluations") or {}
    for key in CORE_CHECKS:
        if key in old:
            out[key] = old.pop(key)
    if "fields" in old:
        out["fields"] = old.pop("fields")
    if "recall_at_k" in old or "mrr" in old:
        out["retrieval"] = {"recall_at_k": old.pop("recall_at_k", None), "mrr": old.pop("mrr", None)}
    if "primary" in old:
        out["primary"] = old.pop("primary")
    elif data.get("error") is None and "correct" in out:
        out["primary"] = 1.0 if out["correct"] else 0.0
    scores: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for name in dict.fromkeys([*old, *why]):
        value, text = old.get(name), str(why.get(name) or "")
        detail = details.get(name) if isinstance(details.get(name), dict) else {}
        cost = detail.get("cost_usd") if "request" in detail else None
        if _failed(value, text, detail):
            errors[name] = {"error": text, "detail": detail, "cost_usd": cost}
        else:
            scores[name] = {"value": value, "explanation": text, "detail": detail, "cost_usd": cost}
    out["scores"], out["score_errors"] = scores, errors
    return out


class Record(BaseModel):
    """One item x one variant x one repeat, exactly as it happened.

    Its outcome, each in its own place: the core checks of the answer (`format_valid` ... `fields`, None where
    they do not apply: the JSON checks on a free-text task, every check on a failed call), the `primary` score
    the tables read as accuracy, the `retrieval` metrics of a RAG variant, and the named scorers' `scores` (or
    `score_errors` where a scorer failed). Unknown is None everywhere, never 0. Lines written in the layout
    before (one `scores` dict for everything) are read through `upgrade_layout`."""

    item_id: str
    variant: str
    model: str  # the config's model name (key under `models:`)
    model_id: str  # the endpoint's model id
    repeat: int = 0
    request: dict[str, Any]
    expected: Any = None
    raw_text: str | None = None
    parsed: Any = None
    usage: Usage | None = None
    # The answering attempt's time, from when its request left to its response: never the waits below.
    latency_s: float | None = None
    finish_reason: str | None = None
    attempts: int = 1
    cache_hit: bool = False
    # A call that never produced an answer (network, 5xx/429 after retries, timeout): not scored as an
    # answer, counted as not correct, and the variant is incomplete.
    error: str | None = None
    error_kind: str | None = None
    # The model answered, but badly by construction (truncated at max_tokens, empty, refused, filtered):
    # scored as an answer (format-invalid and wrong), with the reason here.
    answer_issue: str | None = None
    tool_calls: list[ToolCall] | None = None  # the function calls the answer made, as sent (tasks with `tools:`)
    retrieved_doc_ids: list[str] | None = None
    shot_ids: list[str] | None = None
    # The core checks (harness.scoring.scorers.Checks). json_parsed: the text is JSON; format_valid: it is JSON
    # that validates against output_schema (free text: not empty); json_extractable: a valid JSON value can be
    # found inside the text; correct / correct_lenient: the whole answer matches the expected one, strictly /
    # from the extracted JSON; fields: per expected field, right or not (JSON tasks, object answers).
    json_parsed: bool | None = None
    format_valid: bool | None = None
    json_extractable: bool | None = None
    correct: bool | None = None
    correct_lenient: bool | None = None
    fields: dict[str, bool] | None = None
    # The task's primary score (task.yaml `primary:`, default exact match) in 0..1: "accuracy" in every table.
    # None: unknown (a judge that failed), or not scored (a failed call, which the tables count as 0).
    primary: float | None = None
    retrieval: Retrieval | None = None
    # Named scorers (task.yaml `scoring:`), by name: a Score, or a ScoreError where the scorer failed.
    scores: dict[str, Score] = Field(default_factory=dict)
    score_errors: dict[str, ScoreError] = Field(default_factory=dict)
    cost_usd: float | None = None
    # What retrieval cost for this record, included in cost_usd: a RAG variant's query embedding through
    # rag.embedding (model, tokens, cost_usd charged on every run, and whether the vector came from the cache).
    retrieval_cost: dict[str, Any] | None = None
    # What scoring this record cost (judge calls): evaluation cost, never part of the variant's cost per request.
    eval_cost_usd: float | None = None
    started_at: float | None = None
    # Time this call waited on the client side (rate-limit pacing, a 429 pause, backoff between attempts);
    # None for a cache hit, a Batch API answer and a record written before this field existed.
    wait_s: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        return upgrade_layout(data) if isinstance(data, dict) else data

    @field_validator("primary")
    @classmethod
    def _nan_is_unknown(cls, v: float | None) -> float | None:
        return unknown_if_nan(v)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.variant, self.item_id, self.repeat)


@dataclass
class SkippedVariant:
    variant: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
