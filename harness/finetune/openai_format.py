"""OpenAI's rules for chat fine-tuning files, checked here before anything is uploaded.

A file OpenAI would reject costs an upload and a failed job; every problem is reported with its line number
instead, from the same rules OpenAI publishes (roles, non-empty contents, an assistant message per example,
enough examples, tokens per example, file size).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.finetune.estimates import TokenEstimator

# OpenAI's published limits for chat fine-tuning data.
MIN_EXAMPLES = 10
RECOMMENDED_EXAMPLES = 50
MAX_FILE_BYTES = 512 * 1024 * 1024
# Per-example token limit. OpenAI lists 65,536 training tokens per example for gpt-4o-mini and gpt-4o
# (more for some newer models); 65,536 is used for every base model as the conservative bound.
DEFAULT_CONTEXT_LIMIT = 65_536
CONTEXT_LIMITS = {"gpt-4o-mini": 65_536, "gpt-4o": 65_536, "gpt-4.1-mini": 65_536, "gpt-4.1-nano": 65_536,
                  "gpt-4.1": 65_536}
ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = {"role", "content", "name", "weight", "tool_calls", "function_call", "refusal"}
LINE_KEYS = {"messages", "tools", "functions", "parallel_tool_calls"}
MAX_REPORTED_PROBLEMS = 20


def context_limit(base_model: str) -> int:
    for name in sorted(CONTEXT_LIMITS, key=len, reverse=True):
        if base_model == name or base_model.startswith(name + "-"):
            return CONTEXT_LIMITS[name]
    return DEFAULT_CONTEXT_LIMIT


@dataclass
class FileReport:
    """What OpenAI would say about a training file, found before uploading it."""

    path: Path
    examples: int = 0
    bytes: int = 0
    tokens: int = 0
    max_tokens: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _check_message(m: Any, i: int) -> list[str]:
    if not isinstance(m, dict):
        return [f"messages[{i}] is not an object"]
    problems = []
    unknown = sorted(set(m) - MESSAGE_KEYS)
    if unknown:
        problems.append(f"messages[{i}] has unrecognised key(s) {', '.join(unknown)}")
    role = m.get("role")
    if role not in ROLES:
        problems.append(f"messages[{i}].role is {role!r}; must be one of {', '.join(ROLES)}")
    content = m.get("content")
    if "tool_calls" in m:
        problems += _tool_call_problems(m["tool_calls"], i)
    if role == "assistant" and (m.get("tool_calls") or m.get("function_call")) and content is None:
        return problems
    if not isinstance(content, str):
        problems.append(f"messages[{i}].content must be a string (got {type(content).__name__})")
    elif not content.strip():
        problems.append(f"messages[{i}].content is empty")
    if "weight" in m and m["weight"] not in (0, 1):
        problems.append(f"messages[{i}].weight must be 0 or 1")
    return problems


def _tool_call_problems(calls: Any, i: int) -> list[str]:
    """OpenAI's shape of an assistant's calls: [{id, type: function, function: {name, arguments as JSON text}}]."""
    if not isinstance(calls, list) or not calls:
        return [f"messages[{i}].tool_calls must be a non-empty list"]
    for n, c in enumerate(calls):
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(fn, dict) or c.get("type") != "function" or not c.get("id") \
                or not isinstance(fn.get("name"), str) or not isinstance(fn.get("arguments"), str):
            return [f"messages[{i}].tool_calls[{n}] must be {{id, type: function, function: {{name, arguments}}}} "
                    f"with arguments as JSON text"]
    return []


def _check_line(report: FileReport, where: str, line: str, estimator: TokenEstimator, limit: int) -> None:
    """One line of the file: its problems go to `report.errors`, its example and tokens are counted."""
    if not line.strip():
        report.errors.append(f"{where}: empty line (every line must be one JSON example)")
        return
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        report.errors.append(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})")
        return
    report.examples += 1
    if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
        report.errors.append(f'{where}: each line must be {{"messages": [...]}}')
        return
    unknown = sorted(set(row) - LINE_KEYS)
    if unknown:
        report.errors.append(f"{where}: unrecognised key(s) {', '.join(unknown)}")
    messages = row["messages"]
    if not messages:
        report.errors.append(f"{where}: messages is empty")
        return
    for i, m in enumerate(messages):
        report.errors.extend(f"{where}: {p}" for p in _check_message(m, i))
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        report.errors.append(f"{where}: no assistant message (the answer the model should learn)")
    n = estimator.count(messages)
    report.tokens += n
    report.max_tokens = max(report.max_tokens, n)
    if n > limit:
        report.errors.append(f"{where}: about {n:,} tokens, over the {limit:,}-token limit per example")


def validate_training_file(path: Path, estimator: TokenEstimator, *, limit: int = DEFAULT_CONTEXT_LIMIT,
                           min_examples: int = MIN_EXAMPLES, role: str = "training") -> FileReport:
    """Check every line against OpenAI's chat fine-tuning format; problems carry the line number."""
    report = FileReport(path=path)
    if not path.exists():
        report.errors.append(f"{path}: file not found")
        return report
    report.bytes = path.stat().st_size
    if report.bytes > MAX_FILE_BYTES:
        report.errors.append(f"{path}: {report.bytes / 1024**2:,.0f} MB is over OpenAI's 512 MB file limit")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            _check_line(report, f"{path}:{lineno}", line, estimator, limit)
    if report.examples < min_examples:
        report.errors.append(f"{path}: {report.examples} {role} examples; OpenAI needs at least {min_examples}")
    elif role == "training" and report.examples < RECOMMENDED_EXAMPLES:
        report.warnings.append(f"{path}: only {report.examples} examples; OpenAI sees clear gains from 50-100 "
                               f"good examples")
    return report


def raise_if_invalid(*reports: FileReport) -> None:
    errors = [e for r in reports for e in r.errors]
    if errors:
        shown = errors[:MAX_REPORTED_PROBLEMS]
        more = f"\n  ... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise HarnessError("the training data breaks OpenAI's fine-tuning rules:\n  " + "\n  ".join(shown) + more)
