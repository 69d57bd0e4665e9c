"""One record, in full, as the viewer shows it: the messages sent (instructions, few-shot examples, the item,
retrieved chunks with their doc ids and rank), the answer, every score with its explanation, the judge's
verdict and reasoning, and what the call cost and took. Plain JSON-ready dicts; the page escapes every string."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from harness.records import CORE_CHECKS, Record
from harness.view.data import PASSAGES, PASSAGES_END, calls_text

# Request keys shown as the call's settings (the messages are shown apart, the schema is the task's).
SETTINGS = ("model", "temperature", "max_tokens", "max_completion_tokens", "seed", "stop", "top_p",
            "reasoning_effort")
JUDGE_KEYS = ("score", "score_raw", "reasoning", "verdict_text", "judge_model", "cost_usd", "cache_hit", "error")


def clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become None (the page's JSON.parse rejects them), keys become strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def split_passages(text: str, doc_ids: list[str] | None) -> tuple[list[dict[str, Any]] | None, str]:
    """(retrieved chunks, the rest of the message) of a RAG user message; (None, text) when it has none."""
    if not doc_ids or not text.startswith(PASSAGES) or PASSAGES_END not in text:
        return None, text
    body, rest = text[len(PASSAGES):].rsplit(PASSAGES_END, 1)
    marks = list(re.finditer(r"(?:\A|\n\n)\[(" + "|".join(re.escape(d) for d in doc_ids) + r")\]\n", body))
    if not marks:
        return None, text
    chunks = []
    for n, m in enumerate(marks):
        end = marks[n + 1].start() if n + 1 < len(marks) else len(body)
        doc = m.group(1)
        chunks.append({"rank": n + 1, "doc_rank": doc_ids.index(doc) + 1, "doc_id": doc,
                       "text": body[m.end():end].strip()})
    return chunks, rest


def _content(m: Any) -> str:
    content = m.get("content") if isinstance(m, dict) else m
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, default=str)


def split_messages(messages: list[Any], shot_ids: list[str] | None,
                   doc_ids: list[str] | None) -> list[dict[str, Any]]:
    """Each message sent, labelled: instructions, few-shot example k (question / answer) with its training
    item's id, the item itself (with its retrieved chunks apart), or another message."""
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    last_user = max((i for i, r in enumerate(roles) if r == "user"), default=-1)
    has_system = "system" in roles
    shots = list(shot_ids or [])
    out: list[dict[str, Any]] = []
    k = 0
    for i, m in enumerate(messages):
        role, text = roles[i] or "?", _content(m)
        part: dict[str, Any] = {"role": role, "content": text, "part": "message", "label": role}
        if role == "system" and i == 0:
            part.update(part="instructions", label="instructions (system message)")
        elif i == last_user:
            part.update(part="input", label="the item")
            chunks, rest = split_passages(text, doc_ids)
            if chunks is not None:
                part.update(chunks=chunks, content=rest, label="the item, after the retrieved chunks")
        elif shots and i < last_user and role in ("user", "assistant"):
            n = k // 2
            sid = shots[n] if n < len(shots) else "?"
            part.update(part="example", label=f"few-shot example {n + 1} ({sid}): "
                        f"{'question' if role == 'user' else 'answer'}")
            k += 1
        if i == 0 and role == "user" and not has_system:
            part["label"] += " (starts with the instructions: this model's chat format has no system role)"
        out.append(part)
    return out


def _named(rec: Record) -> list[tuple[str, Any, str, dict[str, Any]]]:
    """(name, value, explanation, detail) of every named scorer; a failed one has no value and says why."""
    out = [(n, s.value, s.explanation, s.detail) for n, s in rec.scores.items()]
    return out + [(n, None, e.error, e.detail) for n, e in rec.score_errors.items()]


def _scores(rec: Record) -> list[dict[str, Any]]:
    def row(name: str, value: Any, why: str = "") -> dict[str, Any]:
        return {"name": name, "value": clean(value), "explanation": why}

    rows = [row(k, getattr(rec, k)) for k in CORE_CHECKS if getattr(rec, k) is not None]
    rows += [row(f"fields.{k}", v) for k, v in (rec.fields or {}).items()]
    rows += [row(name, value, why) for name, value, why, _ in _named(rec)]
    if rec.error is None:
        rows.append(row("primary", rec.primary))
    if rec.retrieval is not None:
        rows += [row("recall_at_k", rec.retrieval.recall_at_k), row("mrr", rec.retrieval.mrr)]
    return rows


def _judges(rec: Record) -> list[dict[str, Any]]:
    out = []
    for name, _, why, ev in _named(rec):
        if not ev:
            continue
        row = {k: clean(ev.get(k)) for k in JUDGE_KEYS if k in ev}
        row["name"] = name
        row["explanation"] = why
        msgs = (ev.get("request") or {}).get("messages") if isinstance(ev.get("request"), dict) else None
        if msgs:
            row["prompt"] = [{"role": str(m.get("role")), "content": _content(m)} for m in msgs if isinstance(m, dict)]
        out.append(row)
    return out


def record_detail(rec: Record) -> dict[str, Any]:
    request = rec.request or {}
    messages = request.get("messages") if isinstance(request.get("messages"), list) else []
    return clean({
        "repeat": rec.repeat, "model": rec.model, "model_id": rec.model_id,
        "messages": split_messages(messages, rec.shot_ids, rec.retrieved_doc_ids),
        "settings": {k: request[k] for k in SETTINGS if k in request},
        "raw": rec.raw_text, "parsed": rec.parsed,
        "tool_calls": calls_text([c.model_dump() for c in rec.tool_calls]) if rec.tool_calls else None,
        "format_valid": rec.format_valid if rec.error is None else None,
        "primary": rec.primary,
        "scores": _scores(rec), "judges": _judges(rec),
        "cost": rec.cost_usd, "eval_cost": rec.eval_cost_usd, "latency": rec.latency_s, "attempts": rec.attempts,
        "cache_hit": rec.cache_hit, "finish_reason": rec.finish_reason,
        "usage": rec.usage.model_dump() if rec.usage is not None else None,
        "error": rec.error, "error_kind": rec.error_kind, "issue": rec.answer_issue,
        "shot_ids": rec.shot_ids, "retrieved_doc_ids": rec.retrieved_doc_ids,
    })


def conversation(value: Any) -> list[dict[str, str]] | None:
    """The turns of an input that is (or holds) a conversation: a list of {role, content} messages."""
    candidates = [value] + (list(value.values()) if isinstance(value, dict) else [])
    for c in candidates:
        if isinstance(c, list) and c and all(isinstance(t, dict) and "role" in t and "content" in t for t in c):
            return [{"role": str(t["role"]), "content": _content(t)} for t in c]
    return None
