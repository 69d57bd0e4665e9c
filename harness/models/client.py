"""The model-call seam: one client per model, written once around its provider (harness.models.providers):
the provider builds the SDK client, shapes the request and classifies a failure; this module paces the calls
(rate limiter), retries them, times each attempt and reads the response."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import email.utils
import json
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pydantic
from openai.types.chat import ChatCompletion

from harness.config import ModelConfig
from harness.errors import HarnessError
from harness.models.providers import Provider, provider_for
from harness.models.providers.base import CallFailed
from harness.models.ratelimit import RateLimiter, estimate_tokens
from harness.records import CallError, Completion, EvalItem, Message, ToolCall, Usage

MAX_RETRY_AFTER_S = 60.0


def retry_after_s(exc: Exception) -> float | None:
    """Seconds the server asked us to wait (Retry-After as seconds or an HTTP date)."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after-ms")
    if value:
        try:
            ms = float(value)
        except ValueError:
            ms = math.nan
        if math.isfinite(ms):
            return max(0.0, ms / 1000)
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None  # e.g. "Retry-After: soon": the caller falls back to exponential backoff
        if when is None:
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive one would be read as local time
            when = when.replace(tzinfo=datetime.UTC)
        return max(0.0, when.timestamp() - time.time())
    return max(0.0, seconds) if math.isfinite(seconds) else None


# Failures of a call that retrying cannot fix (kinds of the provider's `classify`): the run stops on the first
# one (ModelRefused), naming the model and what to do, instead of writing the same error for every item.
PERMANENT_KINDS = ("auth", "forbidden", "not_found", "bad_request", "quota")


# What a call can fail with that is the server's or the network's doing: the SDK's errors (transport, HTTP
# status, a body that does not validate) and a body that is not JSON. Anything else is a bug of the harness
# and propagates.
# A provider that performs its calls itself (an application under test) raises CallFailed, already classified.
CALL_FAILURES = (openai.APIError, json.JSONDecodeError, UnicodeDecodeError, CallFailed)


class ModelRefused(HarnessError):
    """A permanent error from a model's endpoint (see PERMANENT_KINDS): the run stops with this one line."""

    def __init__(self, message: str, kind: str, status: int | None):
        super().__init__(message)
        self.kind = kind
        self.status = status

    @property
    def about_the_request(self) -> bool:
        """A 400 refuses this request's content (too long, a bad parameter for this item): name the item."""
        return self.kind == "bad_request"

    def with_context(self, text: str) -> ModelRefused:
        return ModelRefused(f"{self} ({text})" if text else str(self), self.kind, self.status)


def server_message(exc: Exception) -> str:
    """The server's own explanation of an error response, on one line."""
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    text = str(message) if message else str(exc)
    return " ".join(text.split())[:300]


def read_tool_calls(calls: Any) -> list[ToolCall] | None | str:
    """A response message's `tool_calls` -> ToolCalls (arguments kept as the JSON text sent, so arguments that
    do not parse are scored as such); None when it made none; a string saying why when they are malformed."""
    if not calls:
        return None
    if not isinstance(calls, list):
        return f"response tool_calls is a {type(calls).__name__}, not a list"
    out = []
    for call in calls:
        fn = call.get("function") if isinstance(call, dict) else getattr(call, "function", None)
        get = fn.get if isinstance(fn, dict) else lambda k, fn=fn: getattr(fn, k, None)
        name, args = get("name"), get("arguments")
        if not isinstance(name, str):
            return "response tool call has no function name"
        if not isinstance(args, str):  # a server that sent the arguments as an object rather than JSON text
            args = "" if args is None else json.dumps(args)
        call_id = call.get("id") if isinstance(call, dict) else getattr(call, "id", None)
        out.append(ToolCall(name=name, arguments=args, id=call_id if isinstance(call_id, str) else None))
    return out


def _scrub(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


@dataclass
class ModelClient:
    """Talks to one model endpoint. Built lazily, so listing or validating never needs every API key."""

    name: str
    cfg: ModelConfig
    model_id: str
    base_url: str | None
    api_key: str | None = field(repr=False)
    schema: dict[str, Any] | None
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    # Sent on every call; `{env: NAME}` values already resolved, so never printed or stored.
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    # task.yaml's `tools:` and `tool_choice`, sent with every request (None: the task declares no tools).
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    _client: openai.AsyncOpenAI | None = field(default=None, init=False, repr=False)
    limiter: RateLimiter = field(init=False, repr=False)
    provider: Provider = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Per model: requests/tokens per minute from the config, adapted to the server's headers and 429s.
        self.limiter = RateLimiter(self.cfg.requests_per_minute, self.cfg.tokens_per_minute)
        self.provider = provider_for(self.cfg)

    @property
    def client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            common: dict[str, Any] = {
                "max_retries": 0,  # our loop retries, so it can count attempts and honour the budget
                "timeout": httpx.Timeout(self.cfg.timeout_s, connect=min(10.0, self.cfg.timeout_s)),
                "default_headers": self.headers or None,
                # every response (429s included) reaches the model's rate limiter
                "http_client": openai.DefaultAsyncHttpxClient(event_hooks={"response": [self.limiter.on_response]}),
            }
            self._client = self.provider.build_client(self.base_url, self.api_key, common)
        return self._client

    @property
    def reasoning(self) -> bool:
        """Whether the model takes reasoning parameters (the provider's Provider.reasoning)."""
        return self.provider.reasoning(self.model_id)

    @property
    def secrets(self) -> list[str]:
        """Values scrubbed from error messages: the key, header values (short literal ones such as a team
        name are labels, not credentials, and scrubbing them would mangle messages), and the credentials of
        the URL and extra_body (harness.redact)."""
        from harness.config import EnvRef
        from harness.redact import secret_values

        out = [self.api_key or ""]
        for name, value in self.headers.items():
            if isinstance(self.cfg.headers.get(name), EnvRef) or len(value) >= 8:
                out.append(value)
        return [s for s in out + secret_values(self.cfg) if s]

    def build_request(
        self, messages: list[Message], *, temperature: float, max_tokens: int, seed: int | None, stop: list[str],
        item: EvalItem | None = None,
    ) -> dict[str, Any]:
        """The exact request sent, as recorded, as the provider shapes it (Provider.shape_request)."""
        req = self.provider.shape_request(messages, model_id=self.model_id, temperature=temperature,
                                          max_tokens=max_tokens, seed=seed, stop=stop, schema=self.schema)
        if item is not None and self.provider.performs_call:
            # an application is given the item too: its id, input and metadata, never the expected answer
            req["item"] = {"id": item.id, "input": item.input, "metadata": item.metadata}
        return self.provider.add_tools(req, self.tools, self.tool_choice) if self.tools else req

    def body_for(self, request: dict[str, Any]) -> dict[str, Any]:
        """The JSON body actually posted for `request`: the model's `extra_body` merged over it. The response
        cache keys on this, so changing `extra_body` never serves answers given to another body."""
        return {**request, **self.cfg.extra_body} if self.cfg.extra_body else request

    def keyed_body(self, request: dict[str, Any]) -> dict[str, Any]:
        """`body_for` as the response cache keys it: secret-looking extra_body values left out (harness.redact),
        so no credential reaches the cache and a rotated one still hits. An http application's body template
        (provider: http) is part of what was sent, so it is keyed too, redacted the same way."""
        from harness.redact import redact_body

        keyed = {**request, **redact_body(self.cfg.extra_body)} if self.cfg.extra_body else request
        return {**keyed, "body_template": redact_body(self.cfg.body)} if self.cfg.body is not None else keyed

    @property
    def endpoint_url(self) -> str:
        """The URL the requests go to, as the SDK resolved it (for `provider: openai` without base_url that
        is OPENAI_BASE_URL when set, else api.openai.com)."""
        return str(self.client.base_url)

    async def complete(self, request: dict[str, Any]) -> Completion | CallError:
        """One call with retries. latency_s is the time of the attempt that gave the result, from when its
        request left (after the rate limiter let it go) to its response; wait_s is the time the call spent
        waiting on this side before its attempts (the rate limiter's pacing, a pause after a 429) and between
        them (backoff). Earlier failed attempts count in neither; their number is `attempts`.

        Raises ModelRefused on a permanent error (PERMANENT_KINDS); an exception that is not a call failure
        (CALL_FAILURES) is a bug and propagates."""
        attempts = 0
        waited = 0.0
        body = self.body_for(request)
        while True:
            attempts += 1
            tokens = estimate_tokens(body) if self.limiter.needs_tokens else 0
            t_wait = time.perf_counter()
            async with self.limiter.slot(tokens):
                sent = time.perf_counter()
                waited += sent - t_wait
                try:
                    # The SDK's typed create() walks every param recursively (the JSON Schema included) on each
                    # call, which cost more CPU than the HTTP exchange itself in the benchmark. Our request is
                    # already plain JSON, so it goes through the same client's post() on the same endpoint.
                    if self.provider.performs_call:
                        resp = await self.provider.perform(self.client, body)
                    else:
                        resp = await self.client.post("/chat/completions", body=body, cast_to=ChatCompletion)
                except CALL_FAILURES as exc:
                    failure: Exception | None = exc
                else:
                    failure = None
                latency = time.perf_counter() - sent
            if failure is None:
                if isinstance(resp, Completion):  # a provider that performs the call answers in our terms
                    return dataclasses.replace(resp, latency_s=latency, attempts=attempts, wait_s=waited)
                return self._to_completion(resp, latency, attempts, wait_s=waited)
            kind, retryable, status = self.provider.classify(failure)
            if kind in PERMANENT_KINDS:
                raise self.refused(kind, status, failure) from None
            if retryable and attempts <= self.cfg.max_retries:
                pause = retry_after_s(failure)
                if pause is None:
                    pause = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempts - 1))
                    pause *= 0.5 + random.random()  # jitter so parallel calls don't retry in lockstep
                t_pause = time.perf_counter()
                await asyncio.sleep(min(pause, MAX_RETRY_AFTER_S))
                waited += time.perf_counter() - t_pause
                continue
            message = _scrub(self.provider.failure_message(failure), self.secrets)[:500]
            return CallError(kind=kind, message=message, attempts=attempts, status=status, latency_s=latency,
                             wait_s=waited)

    def refused(self, kind: str, status: int | None, exc: Exception) -> ModelRefused:
        """The one line that stops the run on a permanent error: which model, what the server said, what to do."""
        who = f"models.{self.name} ({self.model_id})"
        said = _scrub(server_message(exc), self.secrets)
        env = self.cfg.effective_api_key_env
        key = f"the API key in {env}" if env else f"the API key (set models.{self.name}.api_key_env)"
        if self.cfg.headers:
            key += f" and the headers of models.{self.name}"
        where = self.provider.model_keys_hint
        todo = {
            "auth": f"the endpoint refused the credentials (HTTP {status}: {said}); check {key}",
            "forbidden": f"the credentials have no access to this model (HTTP {status}: {said}); check {key} "
                         f"and the project or organisation it belongs to",
            "not_found": f"the endpoint does not know this model (HTTP {status}: {said}); check {where} of "
                         f"models.{self.name}",
            "bad_request": f"the request was refused (HTTP {status}: {said}); fix what the server names (in the "
                           f"config or the item) and continue with --resume",
            "quota": f"the account is out of quota (HTTP 429 insufficient_quota: {said}); add credit or check the "
                     f"plan and billing of {key}",
        }[kind]
        return ModelRefused(f"{who}: {todo}", kind, status)

    def _to_completion(self, resp: Any, latency: float | None, attempts: int, *,
                       wait_s: float | None = None) -> Completion | CallError:
        """The parsed response -> a Completion; a body that is not a chat completion (the SDK keeps what does
        not match its types as it came) is a bad_response error, read without trusting any field's type."""
        def bad(why: str) -> CallError:
            return CallError("bad_response", why, attempts, latency_s=latency, wait_s=wait_s)

        choices = getattr(resp, "choices", None)
        if not choices:
            return bad("response has no choices")
        if not isinstance(choices, list):
            return bad(f"response choices is a {type(choices).__name__}, not a list")
        choice = choices[0]
        message = getattr(choice, "message", None)
        if message is None:
            return bad("response choice has no message")
        text = getattr(message, "content", None)
        refusal = getattr(message, "refusal", None)
        finish_reason = getattr(choice, "finish_reason", None)
        for name, value in (("message.content", text), ("message.refusal", refusal), ("finish_reason", finish_reason)):
            if value is not None and not isinstance(value, str):
                return bad(f"response {name} is a {type(value).__name__}, not text")
        u = getattr(resp, "usage", None)
        usage = None  # a server that reports no usage leaves the cost unknown, never $0
        if u is not None:
            details = getattr(u, "prompt_tokens_details", None)
            out_details = getattr(u, "completion_tokens_details", None)
            try:
                usage = Usage(
                    prompt_tokens=getattr(u, "prompt_tokens", None) or 0,
                    completion_tokens=getattr(u, "completion_tokens", None) or 0,
                    total_tokens=getattr(u, "total_tokens", None) or 0,
                    cached_tokens=getattr(details, "cached_tokens", None) or 0,
                    reasoning_tokens=getattr(out_details, "reasoning_tokens", None) or 0,
                )
            except pydantic.ValidationError as exc:
                return bad(f"response usage is not token counts: {exc.errors()[0].get('msg', '')}")
        calls = read_tool_calls(getattr(message, "tool_calls", None))
        if isinstance(calls, str):
            return bad(calls)
        model = getattr(resp, "model", None)
        return Completion(text=text or "", usage=usage, latency_s=latency, finish_reason=finish_reason,
                          model=model if isinstance(model, str) else None, attempts=attempts,
                          refusal=refusal or None, wait_s=wait_s, tool_calls=calls)

    async def probe(self) -> str | None:
        """None when the endpoint answers and serves the model; otherwise the reason to skip it."""
        if self.provider.performs_call:  # an application has no /models to ask
            return self.provider.unavailable()
        try:
            page = await self.client.models.list(timeout=10.0)
        except (openai.APIConnectionError, openai.APITimeoutError):
            from harness.redact import redact_url

            return f"endpoint unreachable at {redact_url(self.endpoint_url)}"
        except openai.AuthenticationError:
            return f"endpoint refused the API key ({self.cfg.effective_api_key_env})"
        except Exception:  # noqa: BLE001 - servers without /models still get a chance to answer
            return None
        ids = [m.id for m in getattr(page, "data", []) or []]
        if ids and self.model_id not in ids and self.provider.lists_served_models:
            shown = ", ".join(ids[:8]) + (" ..." if len(ids) > 8 else "")
            return f"model {self.model_id!r} is not served there (available: {shown})"
        return None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
