"""The model-call seam: one async OpenAI-SDK client per model, the per-backend quirks and the retry policy."""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
import math
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pydantic
from openai.types.chat import ChatCompletion

from harness.config import ModelConfig
from harness.errors import HarnessError
from harness.models.pricing import fine_tuned_base
from harness.models.ratelimit import RateLimiter, estimate_tokens
from harness.records import CallError, Completion, Message, Usage

MAX_RETRY_AFTER_S = 60.0

# Models that take max_completion_tokens, refuse temperature (other than the default) and count hidden
# reasoning tokens. A model's `reasoning: true|false` overrides this list.
REASONING_MODELS = re.compile(r"^(o\d|codex-mini|gpt-5(?!.*-chat))")


def is_reasoning_model(model_id: str) -> bool:
    """o1, o3, o3-mini, o4-mini, the GPT-5 family (not its -chat variants), and fine-tunes of them; a
    gateway's `vendor/model` id is judged by its last part."""
    name = (fine_tuned_base(model_id) or model_id).rsplit("/", 1)[-1].lower()
    return bool(REASONING_MODELS.match(name))


def response_format(mode: str, schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema is None:  # a free-text task: there is no format to constrain the answer to
        return None
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": False}}
    if mode == "json_object":
        # llama.cpp's server turns the schema into a grammar; OpenAI ignores the extra key only in this mode.
        return {"type": "json_object", "schema": schema}
    return None


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


# Failures of a call that retrying cannot fix: the run stops on the first one (ModelRefused), naming the model
# and what to do, instead of writing the same error for every item.
PERMANENT_KINDS = ("auth", "forbidden", "not_found", "bad_request", "quota")


def classify(exc: Exception) -> tuple[str, bool, int | None]:
    """(error kind, retryable, HTTP status) of a call failure. Only transient faults are retried; the kinds in
    PERMANENT_KINDS stop the run."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", True, None
    if isinstance(exc, openai.APIConnectionError):
        return "connection", True, None
    if isinstance(exc, openai.RateLimitError):
        if "insufficient_quota" in (exc.code, exc.type):  # the account is out of credit: no wait brings it back
            return "quota", False, 429
        return "rate_limit", True, 429
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status >= 500 or status in (408, 409):
            return "server_error", True, status
        permanent = {400: "bad_request", 401: "auth", 403: "forbidden", 404: "not_found"}.get(status)
        return permanent or "client_error", False, status
    return "bad_response", False, None


# What a call can fail with that is the server's or the network's doing: the SDK's errors (transport, HTTP
# status, a body that does not validate) and a body that is not JSON. Anything else is a bug of the harness
# and propagates.
CALL_FAILURES = (openai.APIError, json.JSONDecodeError, UnicodeDecodeError)


class ModelRefused(HarnessError):
    """A permanent error from a model's endpoint (see PERMANENT_KINDS): the run stops with this one line."""

    def __init__(self, message: str, kind: str, status: int | None):
        super().__init__(message)
        self.kind = kind
        self.status = status

    def with_context(self, text: str) -> ModelRefused:
        return ModelRefused(f"{self} ({text})" if text else str(self), self.kind, self.status)


def server_message(exc: Exception) -> str:
    """The server's own explanation of an error response, on one line."""
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    text = str(message) if message else str(exc)
    return " ".join(text.split())[:300]


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
    _client: openai.AsyncOpenAI | None = field(default=None, init=False, repr=False)
    limiter: RateLimiter = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Per model: requests/tokens per minute from the config, adapted to the server's headers and 429s.
        self.limiter = RateLimiter(self.cfg.requests_per_minute, self.cfg.tokens_per_minute)

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
            if self.cfg.provider == "azure":
                # /openai/deployments/{deployment}/chat/completions?api-version=..., key in the api-key header
                self._client = openai.AsyncAzureOpenAI(
                    azure_endpoint=self.cfg.endpoint, azure_deployment=self.cfg.deployment,
                    api_version=self.cfg.api_version, api_key=self.api_key or "not-set", **common)
            else:
                # Local servers accept any key; the SDK insists on one.
                self._client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key or "not-needed",
                                                  **common)
        return self._client

    @property
    def reasoning(self) -> bool:
        """The model's `reasoning:` setting, else whether its id (or its `price_as` row) is a known one."""
        if self.cfg.reasoning is not None:
            return self.cfg.reasoning
        return is_reasoning_model(self.model_id) or bool(self.cfg.price_as and is_reasoning_model(self.cfg.price_as))

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
        self, messages: list[Message], *, temperature: float, max_tokens: int, seed: int | None, stop: list[str]
    ) -> dict[str, Any]:
        """The exact request sent, as recorded. Holds no credentials (headers are not part of it). Reasoning
        models get max_completion_tokens and neither temperature nor seed, which they refuse."""
        req: dict[str, Any] = {"model": self.model_id, "messages": messages}
        if self.reasoning:
            req["max_completion_tokens"] = max_tokens
        else:
            req["temperature"] = temperature
            req["max_tokens"] = max_tokens
            if seed is not None:
                req["seed"] = seed
        if self.cfg.reasoning_effort:
            req["reasoning_effort"] = self.cfg.reasoning_effort
        if stop:
            req["stop"] = stop
        fmt = response_format(self.cfg.effective_structured_output, self.schema)
        if fmt is not None:
            req["response_format"] = fmt
        return req

    def body_for(self, request: dict[str, Any]) -> dict[str, Any]:
        """The JSON body actually posted for `request`: the model's `extra_body` merged over it. The response
        cache keys on this, so changing `extra_body` never serves answers given to another body."""
        return {**request, **self.cfg.extra_body} if self.cfg.extra_body else request

    def keyed_body(self, request: dict[str, Any]) -> dict[str, Any]:
        """`body_for` as the response cache keys it: secret-looking extra_body values left out (harness.redact),
        so no credential reaches the cache and a rotated one still hits."""
        from harness.redact import redact_body

        return {**request, **redact_body(self.cfg.extra_body)} if self.cfg.extra_body else request

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
                    resp = await self.client.post("/chat/completions", body=body, cast_to=ChatCompletion)
                except CALL_FAILURES as exc:
                    failure: Exception | None = exc
                else:
                    failure = None
                latency = time.perf_counter() - sent
            if failure is None:
                return self._to_completion(resp, latency, attempts, wait_s=waited)
            kind, retryable, status = classify(failure)
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
            message = _scrub(f"{type(failure).__name__}: {failure}", self.secrets)[:500]
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
        where = ("`deployment` and `endpoint`" if self.cfg.provider == "azure"
                 else "`model` (or model_file) and base_url")
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
        model = getattr(resp, "model", None)
        return Completion(text=text or "", usage=usage, latency_s=latency, finish_reason=finish_reason,
                          model=model if isinstance(model, str) else None, attempts=attempts,
                          refusal=refusal or None, wait_s=wait_s)

    async def probe(self) -> str | None:
        """None when the endpoint answers and serves the model; otherwise the reason to skip it."""
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
        # Azure lists base models there, not deployments: reaching it is all that can be checked.
        if ids and self.model_id not in ids and self.cfg.provider != "azure":
            shown = ", ".join(ids[:8]) + (" ..." if len(ids) > 8 else "")
            return f"model {self.model_id!r} is not served there (available: {shown})"
        return None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
