"""The nouns of the harness: items, messages, completions, records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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


@dataclass
class CallError:
    """A model call that failed after retries; kept apart from a wrong answer."""

    kind: str  # rate_limit | server_error | timeout | connection | bad_response | length | client_error
    message: str
    attempts: int = 1
    status: int | None = None
    latency_s: float | None = None  # the last attempt's time, as for Completion
    wait_s: float | None = None  # client-side waiting, as for Completion


class Record(BaseModel):
    """One item x one variant x one repeat, exactly as it happened."""

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
    retrieved_doc_ids: list[str] | None = None
    shot_ids: list[str] | None = None
    scores: dict[str, Any] = Field(default_factory=dict)
    # Named scorers (task.yaml `scoring:`): why each scored what it did, and what a model-graded one asked and
    # got back (the judge's prompt, verdict, usage, cost), keyed by scorer name.
    explanations: dict[str, str] = Field(default_factory=dict)
    evaluations: dict[str, dict[str, Any]] = Field(default_factory=dict)
    cost_usd: float | None = None
    # What scoring this record cost (judge calls): evaluation cost, never part of the variant's cost per request.
    eval_cost_usd: float | None = None
    started_at: float | None = None
    # Time this call waited on the client side (rate-limit pacing, a 429 pause, backoff between attempts);
    # None for a cache hit, a Batch API answer and a record written before this field existed.
    wait_s: float | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.variant, self.item_id, self.repeat)


@dataclass
class SkippedVariant:
    variant: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
