"""Run configuration: pydantic models for the YAML, with errors that name the file, line and field."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from harness import variant_kinds
from harness.errors import ConfigError, read_utf8
from harness.models.providers import check_settings, provider_class, provider_for
from harness.yaml_errors import _yaml_line, validation_message

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
REDACTED = "<redacted: not stored in the run folder>"
StructuredOutput = Literal["json_schema", "json_object", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _safe_name(value: str) -> str:
    """Run and variant names become folder and file names: no path separators, no leading dot."""
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}", value):
        raise ValueError(f"{value!r} is not a safe name: use up to 100 letters, digits, '-', '_' and '.', not "
                         "starting with '.' (it becomes part of folder and file names)")
    return value


SafeName = Annotated[str, AfterValidator(_safe_name)]


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


class VariantConfig(_Strict):
    name: SafeName
    kind: str  # a registered variant kind (harness.variant_kinds): baseline, few_shot, rag, fine_tuned
    model: str
    # A kind's own parameters, validated by the kind (harness/prompts/kinds/): few_shot reads shots and
    # selection (first, stratified, similar), rag reads top_k; the other kinds ignore them.
    shots: int = 4
    selection: str = "stratified"
    top_k: int = 4
    stop: list[str] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0)
    # Prompt overrides (e.g. two baselines "prompt-v1" and "prompt-v2"): the variant's own instructions (inline or
    # from a file next to the config), input template and system preamble. The fine-tuning export renders with
    # the fine-tuned variant's overrides too, so training and evaluation prompts stay the same.
    instructions: str | None = Field(default=None, min_length=1)
    instructions_file: Path | None = None
    input_template: str | None = Field(default=None, min_length=1)
    system: str | None = Field(default=None, min_length=1)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        variant_kinds.kind_class(value)  # raises naming the valid kinds
        return value

    @model_validator(mode="after")
    def _kind_checks_its_fields(self) -> VariantConfig:
        variant_kinds.kind_class(self.kind).check_config(self)
        return self


class JudgeSettings(_Strict):
    """The model that grades answers for `scorer: judge` (one of `models:`). It answers at temperature 0, its
    calls go through the same client and response cache as the variants', and what it costs is reported as
    evaluation cost, apart from the variants' cost per request."""

    model: str
    max_tokens: int = Field(default=512, ge=16)


class RunSettings(_Strict):
    concurrency: int = Field(default=8, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    max_tokens: int = Field(default=128, ge=1)
    repeats: int = Field(default=1, ge=1)
    seed: int | None = 0
    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    limit: int | None = Field(default=None, ge=1)
    # sync: one HTTP call per request; batch: the whole run through the OpenAI Batch API (harness.runner.batch),
    # priced at the batch rates, polled every batch_poll_s seconds.
    mode: Literal["sync", "batch"] = "sync"
    batch_poll_s: float = Field(default=30.0, gt=0)
    # Train items that repeat or nearly repeat a test item are left out of the few-shot pool and the
    # fine-tuning data; true keeps them (the leakage warning still says so).
    keep_leaked: bool = False


class RagSettings(_Strict):
    chunk_chars: int = Field(default=800, ge=50)
    chunk_overlap: int = Field(default=100, ge=0)
    index_dir: Path | None = None
    # A running Chroma server ("http://HOST:PORT", started with `chroma run`) instead of the embedded store in
    # index_dir: one index shared by every machine, built once per docs content hash.
    server: str | None = None

    @field_validator("server")
    @classmethod
    def _check_server(cls, value: str | None) -> str | None:
        if value is not None:
            chroma_server_address(value)  # raises ValueError with what is wrong
        return value

    @model_validator(mode="after")
    def _one_store(self) -> RagSettings:
        if self.server is not None and self.index_dir is not None:
            raise ValueError("give either server (a Chroma server) or index_dir (the embedded store), not both")
        return self


def chroma_server_address(url: str) -> tuple[str, int, bool]:
    """(host, port, ssl) of a `rag.server` URL such as http://chroma.internal:8000; the port defaults to
    8000 (what `chroma run` listens on), or 443 for https."""
    parsed = urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"expected http://HOST:PORT (a Chroma server started with `chroma run`), got {url!r}")
    if parsed.path.strip("/") or parsed.query or parsed.fragment:
        raise ValueError(f"expected http://HOST:PORT with no path, got {url!r}")
    try:
        port = parsed.port
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    ssl = parsed.scheme == "https"
    return parsed.hostname, port or (443 if ssl else 8000), ssl


class FinetuneSettings(_Strict):
    """How `harness finetune` builds training data and trains; the prompts come from the fine-tuned
    variant's own renderer."""

    variant: str | None = None  # the fine_tuned variant to train for (default: the first one)
    output_dir: Path = Path("results/finetune")
    validation_share: float = Field(default=0.0, ge=0, lt=1)
    seed: int = 0
    # OpenAI jobs
    base_model: str = "gpt-4o-mini-2024-07-18"
    epochs: int = Field(default=3, ge=1)
    suffix: str | None = None
    # local LoRA on the embedded model
    lora_rank: int = Field(default=8, ge=1)
    lora_alpha: float = Field(default=16, gt=0)
    learning_rate: float = Field(default=2e-4, gt=0)
    batch_size: int = Field(default=8, ge=1)
    local_epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, ge=1)
    max_train_items: int | None = Field(default=None, ge=1)


class RunConfig(_Strict):
    name: SafeName
    description: str | None = None
    evalset: Path
    models: dict[str, ModelConfig]
    variants: list[VariantConfig] = Field(min_length=1)
    run: RunSettings = Field(default_factory=RunSettings)
    rag: RagSettings = Field(default_factory=RagSettings)
    pricing: Path | None = None
    target_accuracy: float | None = Field(default=None, ge=0, le=1)
    monthly_requests: int | None = Field(default=None, ge=0)
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    judge: JudgeSettings | None = None

    @model_validator(mode="after")
    def _check_refs(self) -> RunConfig:
        if self.judge is not None and self.judge.model not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            raise ValueError(f"judge.model: unknown model {self.judge.model!r} (models defined: {known})")
        seen: set[str] = set()
        for i, v in enumerate(self.variants):
            if v.name in seen:
                raise ValueError(f"variants[{i}].name: duplicate variant name {v.name!r}")
            seen.add(v.name)
            if v.model not in self.models:
                known = ", ".join(sorted(self.models)) or "none"
                raise ValueError(f"variants[{i}].model: unknown model {v.model!r} (models defined: {known})")
            provider = self.models[v.model].provider
            if self.run.mode == "batch" and not provider_class(provider).serves_batch_api:
                raise ValueError(f"variants[{i}].model: run.mode batch sends the run through the OpenAI Batch API, "
                                 f"which model {v.model!r} (provider: {provider}) does not serve; use mode: sync")
        return self

    def variant(self, name: str) -> VariantConfig:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)


def read_yaml(path: Path, error_cls: type[Exception] = ConfigError) -> tuple[Any, yaml.Node | None]:
    if not path.exists():
        raise error_cls(f"{path}: file not found")
    text = read_utf8(path, error_cls)
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error_cls(f"{path}{where}: invalid YAML: {problem}") from None
    return data, node


def _resolve(p: Path, base: Path) -> Path:
    """Paths in a config are relative to the config file's folder, else to the working directory.
    A path that does not exist yet (an adapter to be trained) follows whichever anchor its first
    component exists under, preferring the config's folder."""
    if p.is_absolute():
        return p
    for candidate in (base / p, Path.cwd() / p):
        if candidate.exists():
            return candidate.resolve()
    first = Path(p.parts[0]) if p.parts else Path(".")
    anchor = base if (base / first).exists() or not (Path.cwd() / first).exists() else Path.cwd()
    return (anchor / p).resolve()


def load_config(path: str | Path) -> RunConfig:
    path = Path(path)
    data, node = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys (name, evalset, models, variants, ...)")
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc, node, RunConfig)) from None
    base = path.resolve().parent
    cfg.evalset = _resolve(cfg.evalset, base)
    if not cfg.evalset.is_dir():
        line = _yaml_line(node, ("evalset",))
        raise ConfigError(f"{path}:{line}: evalset: folder not found: {cfg.evalset}")
    if cfg.pricing is not None:
        cfg.pricing = _resolve(cfg.pricing, base)
        if not cfg.pricing.exists():
            line = _yaml_line(node, ("pricing",))
            raise ConfigError(f"{path}:{line}: pricing: file not found: {cfg.pricing}")
    for name, m in cfg.models.items():
        for attr in ("gguf", "lora", "model_file"):
            value = getattr(m, attr)
            if value is not None:
                resolved = _resolve(value, base)
                setattr(m, attr, resolved)
                # A missing adapter skips its variant at run time (with how to create it); a base model must exist.
                if attr == "gguf" and not resolved.exists():
                    line = _yaml_line(node, ("models", name, attr))
                    raise ConfigError(f"{path}:{line}: models.{name}.{attr}: file not found: {resolved}")
    _read_instructions_files(cfg, path, node, base)
    cfg.finetune.output_dir = _resolve(cfg.finetune.output_dir, base)
    if cfg.rag.index_dir is not None:
        cfg.rag.index_dir = _resolve(cfg.rag.index_dir, base)
    return cfg


def _read_instructions_files(cfg: RunConfig, path: Path, node: Any, base: Path) -> None:
    """A variant's `instructions_file` is read once, here, into `instructions`: the run's config.json then holds
    the very text that was used, and the file stays named for provenance."""
    for i, v in enumerate(cfg.variants):
        if v.instructions_file is None:
            continue
        line = _yaml_line(node, ("variants", i, "instructions_file"))
        if v.instructions is not None:
            raise ConfigError(f"{path}:{line}: variants[{i}]: give instructions or instructions_file, not both")
        v.instructions_file = _resolve(v.instructions_file, base)
        try:
            text = read_utf8(v.instructions_file, ConfigError).strip()
        except OSError:
            raise ConfigError(f"{path}:{line}: variants[{i}].instructions_file: file not found: "
                              f"{v.instructions_file}") from None
        if not text:
            raise ConfigError(f"{path}:{line}: variants[{i}].instructions_file: {v.instructions_file} is empty")
        v.instructions = text


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
