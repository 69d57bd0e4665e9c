"""The model-call seam: one async OpenAI-SDK client per model, the per-backend quirks and the retry policy."""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import math
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from openai.types.chat import ChatCompletion

from harness.config import ModelConfig
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


def classify(exc: Exception) -> tuple[str, bool, int | None]:
    """(error kind, retryable, HTTP status). Only transient faults are retried."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", True, None
    if isinstance(exc, openai.APIConnectionError):
        return "connection", True, None
    if isinstance(exc, openai.RateLimitError):
        return "rate_limit", True, 429
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status >= 500 or status in (408, 409):
            return "server_error", True, status
        return "client_error", False, status
    if isinstance(exc, openai.APIResponseValidationError | ValueError | KeyError | TypeError):
        return "bad_response", False, None
    return "bad_response", False, None


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
        """One call with retries. latency_s covers the whole call (every attempt and every backoff wait);
        the number of attempts is reported apart."""
        attempts = 0
        secrets = self.secrets
        body = self.body_for(request)
        t0 = time.perf_counter()
        while True:
            attempts += 1
            tokens = estimate_tokens(body) if self.limiter.needs_tokens else 0
            try:
                # The SDK's typed create() walks every param recursively (the JSON Schema included) on each
                # call, which cost more CPU than the HTTP exchange itself in the benchmark. Our request is
                # already plain JSON, so it goes through the same client's post() on the same endpoint.
                async with self.limiter.slot(tokens):
                    resp = await self.client.post("/chat/completions", body=body, cast_to=ChatCompletion)
                return self._to_completion(resp, time.perf_counter() - t0, attempts)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes data, never a crash
                kind, retryable, status = classify(exc)
                if retryable and attempts <= self.cfg.max_retries:
                    wait = retry_after_s(exc)
                    if wait is None:
                        wait = min(self.backoff_cap_s, self.backoff_base_s * 2 ** (attempts - 1))
                        wait *= 0.5 + random.random()  # jitter so parallel calls don't retry in lockstep
                    await asyncio.sleep(min(wait, MAX_RETRY_AFTER_S))
                    continue
                message = _scrub(f"{type(exc).__name__}: {exc}", secrets)[:500]
                return CallError(kind=kind, message=message, attempts=attempts, status=status,
                                 latency_s=time.perf_counter() - t0)

    def _to_completion(self, resp: Any, latency: float, attempts: int) -> Completion | CallError:
        choices = getattr(resp, "choices", None)
        if not choices:
            return CallError("bad_response", "response has no choices", attempts, latency_s=latency)
        choice = choices[0]
        message = choice.message
        text = (message.content if message is not None else None) or ""
        refusal = getattr(message, "refusal", None) if message is not None else None
        u = getattr(resp, "usage", None)
        usage = None  # a server that reports no usage leaves the cost unknown, never $0
        if u is not None:
            details = getattr(u, "prompt_tokens_details", None)
            out_details = getattr(u, "completion_tokens_details", None)
            usage = Usage(
                prompt_tokens=u.prompt_tokens or 0,
                completion_tokens=u.completion_tokens or 0,
                total_tokens=u.total_tokens or 0,
                cached_tokens=(getattr(details, "cached_tokens", None) or 0) if details is not None else 0,
                reasoning_tokens=getattr(out_details, "reasoning_tokens", None) or 0,
            )
        return Completion(text=text, usage=usage, latency_s=latency, finish_reason=choice.finish_reason,
                          model=getattr(resp, "model", None), attempts=attempts, refusal=refusal or None)

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
