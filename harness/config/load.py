"""The whole config (`RunConfig`) and its loading, with errors that name the file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from harness.config._base import SafeName, _Strict
from harness.config.models import ModelConfig
from harness.config.settings import FinetuneSettings, JudgeSettings, RagSettings, RunSettings
from harness.config.variants import VariantConfig
from harness.errors import ConfigError, read_utf8
from harness.models.providers import provider_class
from harness.yaml_errors import _yaml_line, validation_message

# Providers whose endpoint serves OpenAI's /embeddings (rag.embedding.model).
EMBEDDING_PROVIDERS = ("openai", "azure", "openai-compatible")


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
    # A variant whose answers the others are scored against ("agreement with VARIANT"): label-free parity.
    reference: SafeName | None = None

    @model_validator(mode="after")
    def _check_refs(self) -> RunConfig:
        if self.rag.embedding is not None and self.rag.embedding.model not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            raise ValueError(f"rag.embedding.model: unknown model {self.rag.embedding.model!r} (models defined: "
                             f"{known}); add the embedding model under models:")
        if self.rag.embedding is not None:
            provider = self.models[self.rag.embedding.model].provider
            if provider not in EMBEDDING_PROVIDERS:
                raise ValueError(f"rag.embedding.model: model {self.rag.embedding.model!r} has provider {provider}; "
                                 f"embeddings are asked through an OpenAI-style endpoint: provider "
                                 f"{', '.join(EMBEDDING_PROVIDERS)}")
        if self.judge is not None and self.judge.model not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            raise ValueError(f"judge.model: unknown model {self.judge.model!r} (models defined: {known})")
        _check_stop_when(self)
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
        if self.reference is not None and self.reference not in seen:
            raise ValueError(f"reference: {self.reference!r} is not a variant of this config (variants: "
                             f"{', '.join(v.name for v in self.variants)})")
        return self

    def variant(self, name: str) -> VariantConfig:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)


def _check_stop_when(cfg: RunConfig) -> None:
    stop = cfg.run.stop_when
    if stop is None:
        return
    names = [v.name for v in cfg.variants]
    for i, name in enumerate(stop.compare):
        if name not in names:
            raise ValueError(f"run.stop_when.compare[{i}]: unknown variant {name!r} (variants: {', '.join(names)})")
    if cfg.run.mode == "batch":
        raise ValueError("run.stop_when: a Batch API run sends every request at once, so it cannot stop early; "
                         "use mode: sync or remove stop_when")


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
        if m.function is not None:  # provider python: its module is imported from the config's folder first
            m.import_path = list(dict.fromkeys([base, *(_resolve(p, base) for p in m.import_path)]))
    _read_instructions_files(cfg, path, node, base)
    cfg.finetune.output_dir = _resolve(cfg.finetune.output_dir, base)
    if cfg.finetune.base_model_path is not None:
        cfg.finetune.base_model_path = _resolve(cfg.finetune.base_model_path, base)
    if cfg.rag.index_dir is not None:
        cfg.rag.index_dir = _resolve(cfg.rag.index_dir, base)
    if cfg.rag.path is not None:
        cfg.rag.path = _resolve(cfg.rag.path, base)
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
