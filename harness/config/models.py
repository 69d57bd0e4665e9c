"""`models:`: what each model is, how it is reached, and the secrets it needs (read from the environment)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from harness.config._base import _Strict
from harness.errors import ConfigError
from harness.models.providers import check_settings, provider_class, provider_for

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
REDACTED = "<redacted: not stored in the run folder>"
StructuredOutput = Literal["json_schema", "json_object", "none"]


class PriceOverride(_Strict):
    """USD per 1M tokens; overrides the price table for one model."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)


class EnvRef(_Strict):
    """A value read from an environment variable when the call is made: `{env: NAME}`."""

    env: str = Field(min_length=1)


class ModelConfig(_Strict):
    provider: str  # a registered provider's name (harness.models.providers): what it needs is checked below
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    # Azure OpenAI: the resource endpoint (`base_url` is accepted as a synonym), deployment and API version.
    azure_endpoint: str | None = None
    deployment: str | None = None
    api_version: str | None = None
    # Which price-table row prices this model (an Azure deployment or a gateway alias has its own name).
    price_as: str | None = None
    # Sent on every call (gateways: Portkey, Helicone, an internal proxy). Values never reach the run folder.
    headers: dict[str, str | EnvRef] = Field(default_factory=dict)
    # Reasoning models take max_completion_tokens and refuse temperature/seed; default: by model name.
    reasoning: bool | None = None
    reasoning_effort: ReasoningEffort | None = None
    structured_output: StructuredOutput | None = None
    system_role: bool | None = None
    stop: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    price: PriceOverride | None = None
    price_per_hour: float | None = Field(default=None, ge=0)
    gguf: Path | None = None
    lora: Path | None = None
    # A file holding the model id (written by `harness finetune openai`); a missing file skips the variant.
    model_file: Path | None = None
    extra_body: dict[str, Any] = Field(default_factory=dict)
    # Client-side rate limits (harness.models.ratelimit); the server's x-ratelimit-* headers and 429s adapt them.
    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)
    # A fixed price per call in USD (an application that reports no cost; any endpoint billed per request).
    price_per_call: float | None = Field(default=None, ge=0)
    # `provider: python` (harness.models.providers.python_app): "package.module:function", and the folders it
    # is imported from (the config's folder is added when the config is loaded).
    function: str | None = None
    import_path: list[Path] = Field(default_factory=list)
    # `provider: http` (harness.models.providers.http_app): the endpoint, the JSON body template filled per item,
    # and where the answer (and optionally usage, cost, retrieved doc ids, tool calls) is in the response.
    url: str | None = None
    body: dict[str, Any] | None = None
    answer_path: str | None = None
    usage_path: str | None = None
    cost_path: str | None = None
    doc_ids_path: str | None = None
    tool_calls_path: str | None = None

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        provider_class(value)  # raises ValueError listing the registered providers
        return value

    @model_validator(mode="after")
    def _check_provider(self) -> ModelConfig:
        check_settings(self)  # what the provider needs, and no key that only another provider takes
        for name in self.headers:
            if not name.strip() or any(c in name for c in ":\r\n "):
                raise ValueError(f"headers: {name!r} is not a valid HTTP header name")
        return self

    # Defaults that depend on the provider are the provider's (harness.models.providers); the rest of the code
    # reads the one value here.
    @property
    def effective_structured_output(self) -> StructuredOutput:
        return provider_for(self).structured_output_mode  # type: ignore[return-value]

    @property
    def effective_system_role(self) -> bool:
        return provider_for(self).system_role

    @property
    def effective_api_key_env(self) -> str | None:
        return provider_for(self).api_key_env

    @property
    def endpoint(self) -> str | None:
        """Where calls go: base_url, or for Azure the resource endpoint (given as base_url or azure_endpoint)."""
        return self.azure_endpoint or self.base_url



def api_key_for(model: ModelConfig, env: dict[str, str] | None = None) -> str | None:
    """Read the key from the environment variable the config names; never stored anywhere."""
    env = os.environ if env is None else env
    name = model.effective_api_key_env
    if not name:
        return None
    return env.get(name)


def header_values(model: ModelConfig, env: dict[str, str] | None = None) -> dict[str, str]:
    """The headers to send, with `{env: NAME}` values read from the environment now. Never stored."""
    env = os.environ if env is None else env
    out: dict[str, str] = {}
    for name, value in model.headers.items():
        if isinstance(value, EnvRef):
            if not env.get(value.env):
                raise ConfigError(f"headers.{name}: environment variable {value.env} is not set")
            out[name] = env[value.env]
        else:
            out[name] = value
    return out
