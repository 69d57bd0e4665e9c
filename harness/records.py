"""The nouns of the harness: items, messages, completions, records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Message = dict[str, str]  # {"role": ..., "content": ...}


class EvalItem(BaseModel):
    """One line of test.jsonl / train.jsonl."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    input: dict[str, Any]
    expected: Any = None
    expected_doc_ids: list[str] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0


@dataclass
class Completion:
    """What a model call returned, before scoring."""

    text: str
    usage: Usage
    latency_s: float
    finish_reason: str | None = None
    model: str | None = None
    attempts: int = 1
    cache_hit: bool = False


@dataclass
class CallError:
    """A model call that failed after retries; kept apart from a wrong answer."""

    kind: str  # rate_limit | server_error | timeout | connection | bad_response | length | client_error
    message: str
    attempts: int = 1
    status: int | None = None
    latency_s: float | None = None


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
    latency_s: float | None = None
    finish_reason: str | None = None
    attempts: int = 1
    cache_hit: bool = False
    error: str | None = None
    error_kind: str | None = None
    retrieved_doc_ids: list[str] | None = None
    shot_ids: list[str] | None = None
    scores: dict[str, Any] = Field(default_factory=dict)
    cost_usd: float | None = None
    started_at: float | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.variant, self.item_id, self.repeat)


@dataclass
class SkippedVariant:
    variant: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
