"""A provider: what differs between the kinds of endpoint a model is called through.

One `Provider` subclass per provider (openai, azure, openai-compatible, local), registered by name in
harness.models.providers.registry. Built per model from its config, it says
- whether the config is complete (`check`: the config's validation asks it),
- the id the model answers to, its row in the price table and what identifies it in the response cache,
- which credential must be set before the first call (`key_problem`),
- how its SDK client is built (`build_client`), how a request is shaped (`shape_request`: reasoning
  parameters, structured output; `system_role` says whether the system message is kept) and what a failed
  call was (`classify`),
- whether the harness starts its server and prices it by the hour, and which `harness finetune` trains it.
Retries, rate limits, timing and the cache are written once around it, in harness.models.client.ModelClient.

It reads the model's config through `ModelSettings` and imports nothing of the harness but leaf modules, so
the config can ask it without an import cycle. The OpenAI SDK is imported only when a client is built or a
failure classified.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

from harness.models.model_ids import is_reasoning_model

Message = dict[str, Any]


class ModelSettings(Protocol):
    """What a provider reads of a model's config (harness.config.ModelConfig)."""

    provider: str
    model: str | None
    model_file: Path | None
    base_url: str | None
    api_key_env: str | None
    azure_endpoint: str | None
    deployment: str | None
    api_version: str | None
    price_as: str | None
    reasoning: bool | None
    reasoning_effort: str | None
    structured_output: str | None
    system_role: bool | None
    gguf: Path | None
    lora: Path | None
    price_per_call: float | None

    @property
    def endpoint(self) -> str | None: ...


def response_format(mode: str, schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema is None:  # a free-text task: there is no format to constrain the answer to
        return None
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": False}}
    if mode == "json_object":
        # llama.cpp's server turns the schema into a grammar; OpenAI ignores the extra key only in this mode.
        return {"type": "json_object", "schema": schema}
    return None


def classify_openai_error(exc: Exception) -> tuple[str, bool, int | None]:
    """(error kind, retryable, HTTP status) of a failure raised by the OpenAI SDK. Only transient faults are
    retryable; the client stops the run on the permanent kinds (harness.models.client.PERMANENT_KINDS)."""
    import openai

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


class CallFailed(Exception):
    """A failed call that a provider performs itself (an application under test), already classified: its
    text is the one-line message recorded (no traceback). `response` is the HTTP response, when there is one,
    so a Retry-After header is honoured as for a model."""

    def __init__(self, message: str, kind: str, retryable: bool, status: int | None = None, response: Any = None):
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.status = status
        self.response = response


class Provider:
    """The defaults are those of an OpenAI-compatible chat-completions endpoint; a subclass changes what its
    endpoint does differently. Class attributes are what the config and the planner ask without a model."""

    name: ClassVar[str] = ""
    # Config keys only this provider accepts (another provider's model refuses them).
    own_keys: ClassVar[tuple[str, ...]] = ()
    # The variable the key is read from when the model sets no api_key_env; whether calls need a key at all.
    default_api_key_env: ClassVar[str | None] = None
    requires_api_key: ClassVar[bool] = False
    # Defaults of the model's `structured_output:` and `system_role:` (whether the system message is kept).
    default_structured_output: ClassVar[str] = "json_schema"
    keeps_system_role: ClassVar[bool] = True
    # No per-token price: free, or costed from measured throughput at the model's price_per_hour.
    self_hosted: ClassVar[bool] = False
    # The harness starts the server and stops it after the run: a HarnessServed provider.
    started_by_harness: ClassVar[bool] = False
    # run.mode batch can send its requests through the OpenAI Batch API.
    serves_batch_api: ClassVar[bool] = True
    serves_tools: ClassVar[bool] = True  # reads the chat-completions `tools` parameter and answers with calls
    # GET /models lists the model ids served there, so the probe can say a model is not one of them.
    lists_served_models: ClassVar[bool] = True
    # Which `harness finetune` trains a model of this provider: "remote" (openai) or "local" (a LoRA).
    fine_tune_with: ClassVar[str] = "remote"
    # Its usage counts tokens as OpenAI counts (and bills) them: a calibration on it holds for OpenAI.
    openai_token_counts: ClassVar[bool] = False
    # What to check when the endpoint does not know the model; what to add when the model has no price.
    model_keys_hint: ClassVar[str] = "`model` (or model_file) and base_url"
    unpriced_hint: ClassVar[str] = ""
    # The provider makes the call itself (`perform`: an application under test, a Python function or an HTTP
    # endpoint) instead of posting the request to an OpenAI-compatible /chat/completions; ModelClient still
    # owns the cache, the rate limiter, the retries and the timing around it.
    performs_call: ClassVar[bool] = False
    # An unknown token price stops no run: the application may report each call's cost itself.
    reports_cost: ClassVar[bool] = False

    def __init__(self, cfg: ModelSettings):
        self.cfg = cfg

    # -- the config ---------------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise ValueError saying what the model's config lacks for this provider (one line, what to set)."""

    def require_model(self) -> None:
        if not (self.cfg.model or self.cfg.model_file):
            raise ValueError(f"provider {self.name} needs model (the model id the endpoint serves)")

    @property
    def api_key_env(self) -> str | None:
        return self.cfg.api_key_env or self.default_api_key_env

    def key_problem(self, name: str, environ: Mapping[str, str]) -> str | None:
        """What is wrong with the credential before the first call, or None (the caller says which model)."""
        env = self.api_key_env
        if self.requires_api_key:
            if env and not environ.get(env):
                return (f"environment variable {env} is not set; export it (the key is read from the "
                        f"environment only) or set models.{name}.api_key_env to the variable that holds it")
            return None
        if self.cfg.api_key_env and not environ.get(self.cfg.api_key_env):
            return f"environment variable {self.cfg.api_key_env} is not set; export it"
        return None

    @property
    def structured_output_mode(self) -> str:
        return self.cfg.structured_output or self.default_structured_output

    @property
    def system_role(self) -> bool:
        return self.cfg.system_role if self.cfg.system_role is not None else self.keeps_system_role

    # -- identities ---------------------------------------------------------------------------------------
    def model_id(self, name: str) -> str:
        """The id the endpoint answers to: `model`, else the content of `model_file`, else the config name."""
        if self.cfg.model:
            return self.cfg.model
        if self.cfg.model_file is not None and self.cfg.model_file.exists():
            return self.cfg.model_file.read_text("utf-8").strip()
        return name

    def price_id(self, model_id: str) -> str:
        """The price-table row that prices the model: the one `price_as` names, else its id."""
        return self.cfg.price_as or model_id

    def cache_scope(self) -> str:
        """What besides the URL (and the header names) tells two endpoints apart in the response cache."""
        return ""


    # -- calls --------------------------------------------------------------------------------------------
    def build_client(self, base_url: str | None, api_key: str | None, common: dict[str, Any]) -> Any:
        """The SDK client calls go through; `common` holds what the harness sets on every client (no SDK
        retries, timeouts, headers, the rate limiter's hook)."""
        import openai

        # Local servers and gateways accept any key; the SDK insists on one.
        return openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "not-needed", **common)

    def reasoning(self, model_id: str) -> bool:
        """The model's `reasoning:` setting, else whether its id (or its `price_as` row) is a known one."""
        if self.cfg.reasoning is not None:
            return self.cfg.reasoning
        return is_reasoning_model(model_id) or bool(self.cfg.price_as and is_reasoning_model(self.cfg.price_as))

    def shape_request(self, messages: list[Message], *, model_id: str, temperature: float, max_tokens: int,
                      seed: int | None, stop: list[str], schema: dict[str, Any] | None) -> dict[str, Any]:
        """The exact request sent, as recorded. Holds no credentials (headers are not part of it). Reasoning
        models get max_completion_tokens and neither temperature nor seed, which they refuse."""
        req: dict[str, Any] = {"model": model_id, "messages": messages}
        if self.reasoning(model_id):
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
        fmt = response_format(self.structured_output_mode, schema)
        if fmt is not None:
            req["response_format"] = fmt
        return req

    def add_tools(self, req: dict[str, Any], tools: list[dict[str, Any]],
                  tool_choice: str | dict[str, Any] | None) -> dict[str, Any]:
        """The request with the task's tools (task.yaml `tools:`, OpenAI function schemas) and `tool_choice`,
        in the chat-completions `tools` parameter (OpenAI, Azure, vLLM and other compatible servers read it)."""
        req = {**req, "tools": tools}
        if tool_choice is not None:
            req["tool_choice"] = tool_choice
        return req

    def classify(self, exc: Exception) -> tuple[str, bool, int | None]:
        """(error kind, retryable, HTTP status) of a failed call."""
        if isinstance(exc, CallFailed):
            return exc.kind, exc.retryable, exc.status
        return classify_openai_error(exc)

    def failure_message(self, exc: Exception) -> str:
        """The recorded message of a failed call (before credentials are scrubbed from it)."""
        return str(exc) if isinstance(exc, CallFailed) else f"{type(exc).__name__}: {exc}"


class HarnessServed(Provider, abc.ABC):
    """A provider whose server the harness starts before the first call and stops after the run (the embedded
    model). Only these have a server to start, so only these answer the three questions below."""

    started_by_harness: ClassVar[bool] = True

    @abc.abstractmethod
    def server_spec(self, model_id: str) -> Any:
        """What the harness starts the model's server with."""

    @classmethod
    @abc.abstractmethod
    def start_server(cls, specs: list[Any], run_dir: Path) -> Any:
        """Start one server for these specs; the result has `base_url` and `stop()`."""

    @abc.abstractmethod
    def server_identity(self, spec: Any) -> str:
        """What identifies a harness-started model in the response cache (its port is new on every run)."""
