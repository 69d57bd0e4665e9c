"""What the two application providers share (`provider: python`, `provider: http`): the team's own system is the
one under test, called with the rendered messages and the item instead of a model's chat completion.

The request recorded (and keyed in the response cache) is `{"messages": [...], "item": {id, input, metadata}}`:
what the harness hands to the application; the item's expected answer never leaves the harness. The answer
becomes a Completion (text, tool calls, usage, the cost and the retrieved doc ids the application reports), and
every failure a CallFailed that ModelClient retries (transient) or records (the rest), as for a model.
"""

from __future__ import annotations

import abc
import json
import math
import re
from typing import Any, ClassVar

from harness.models.providers.base import CallFailed, Message, Provider
from harness.records import Completion, ToolCall, Usage

# Model settings an application does not take (it is not called through the OpenAI SDK).
_NOT_FOR_APPS = ("base_url", "api_key_env", "reasoning", "reasoning_effort", "structured_output", "extra_body",
                 "model_file", "price_per_hour", "stop")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def is_set(value: Any) -> bool:
    return value is not None and value != [] and value != {}


def path_parts(path: str) -> list[str | int]:
    """`data.answer`, `choices.0.text` or `choices[0].text` -> ["choices", 0, "text"]; ValueError when the
    path is empty or malformed."""
    parts: list[str | int] = []
    for piece in path.split("."):
        found = _PATH_PART.findall(piece) if piece else []
        if not found or "".join(n or f"[{i}]" for n, i in found) != piece:
            raise ValueError(f"{path!r} is not a dotted path (e.g. data.answer or choices[0].text)")
        for name, index in found:
            parts.append(int(name) if name.isdigit() else name if name else int(index))
    return parts


_MISSING = object()


def lookup(data: Any, parts: list[str | int]) -> Any:
    """The value at a path, or _MISSING (an int part indexes a list, or is a key of an object)."""
    for part in parts:
        if isinstance(data, dict):
            data = data.get(str(part), _MISSING)
        elif isinstance(data, list) and isinstance(part, int) and -len(data) <= part < len(data):
            data = data[part]
        else:
            return _MISSING
        if data is _MISSING:
            return _MISSING
    return data


def bad(message: str) -> CallFailed:
    """The application answered, but not in a shape the harness can read: recorded, never retried."""
    return CallFailed(message, "bad_response", False)


def answer_text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        raise bad(f"{where} is null")
    return json.dumps(value, ensure_ascii=False)  # a JSON answer given as an object: scored as its JSON text


def usage_of(value: Any, where: str) -> Usage | None:
    """{prompt_tokens, completion_tokens} -> Usage; None when not reported."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad(f"{where} is a {type(value).__name__}, not {{prompt_tokens, completion_tokens}}")
    counts = {}
    for key in ("prompt_tokens", "completion_tokens"):
        n = value.get(key, 0)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise bad(f"{where}.{key} is {n!r}, not a token count")
        counts[key] = n
    return Usage(**counts, total_tokens=counts["prompt_tokens"] + counts["completion_tokens"])


def cost_of(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise bad(f"{where} is {value!r}, not a cost in USD")
    return float(value)


def doc_ids_of(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        raise bad(f"{where} is not a list of document ids")
    return [str(v) for v in value]


def tool_calls_of(value: Any, where: str) -> list[ToolCall] | None:
    """[{name, arguments (an object or its JSON text), id?}] -> ToolCalls (OpenAI's {function: {...}} too)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise bad(f"{where} is not a list of tool calls")
    out = []
    for i, call in enumerate(value):
        fn = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise bad(f"{where}[{i}] has no name")
        args = fn.get("arguments", {})
        out.append(ToolCall(name=fn["name"], arguments=args if isinstance(args, str) else json.dumps(args),
                            id=str(call["id"]) if call.get("id") is not None else None))
    return out


def completion(text: str, *, usage: Usage | None = None, cost_usd: float | None = None,
               doc_ids: list[str] | None = None, tool_calls: list[ToolCall] | None = None) -> Completion:
    """What the application answered (latency and attempts are ModelClient's to fill)."""
    return Completion(text=text, usage=usage, latency_s=0.0, tool_calls=tool_calls, cost_usd=cost_usd,
                      retrieved_doc_ids=doc_ids)


class AppProvider(Provider, abc.ABC):
    """An application as the system under test; see the module docstring. It performs its calls itself
    (`performs_call`): ModelClient awaits `perform` where a model's request goes to /chat/completions."""

    performs_call = True
    reports_cost = True
    serves_batch_api = False  # the OpenAI Batch API cannot call a team's own code
    lists_served_models = False
    default_structured_output = "none"  # the application is sent no response_format
    # Settings of the model config only the other application provider takes, refused here (see check()).
    refused_keys: ClassVar[tuple[str, ...]] = _NOT_FOR_APPS

    def check(self) -> None:
        for key in self.refused_keys:
            if is_set(getattr(self.cfg, key, None)):
                raise ValueError(f"provider {self.name} does not take {key} (the application is called "
                                 f"{self.called_how}, not through the OpenAI SDK)")
        if self.cfg.price_per_call is not None and getattr(self.cfg, "price", None) is not None:
            raise ValueError(f"provider {self.name}: give price_per_call or price (per token), not both")

    called_how: ClassVar[str] = ""

    @abc.abstractmethod
    async def perform(self, client: Any, body: dict[str, Any]) -> Completion:
        """The call itself (client: what build_client built). Raises CallFailed; latency, attempts and waits are
        filled in by the caller."""

    def unavailable(self) -> str | None:
        """Why the application cannot be called at all (the probe's answer), or None."""
        return None

    def shape_request(self, messages: list[Message], *, model_id: str, temperature: float, max_tokens: int,
                      seed: int | None, stop: list[str], schema: dict[str, Any] | None) -> dict[str, Any]:
        # The client adds the item (ModelClient.build_request); sampling settings are the application's own.
        return {"messages": messages}
