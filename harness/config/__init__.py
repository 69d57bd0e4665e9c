"""Run configuration: pydantic models for the YAML, with errors that name the file, line and field.

One module per part of the YAML: `models` (models: and their secrets), `variants` (variants:), `settings`
(run:, rag:, finetune:, judge:) and `load` (the whole RunConfig and load_config). Import from here.
"""

from harness.config._base import SafeName
from harness.config.load import RunConfig, load_config, read_yaml
from harness.config.models import (
    REDACTED,
    EnvRef,
    ModelConfig,
    PriceOverride,
    ReasoningEffort,
    StructuredOutput,
    api_key_for,
    header_values,
)
from harness.config.settings import (
    FinetuneSettings,
    JudgeSettings,
    RagSettings,
    RunSettings,
    StopWhen,
    chroma_server_address,
)
from harness.config.variants import VariantConfig
from harness.errors import ConfigError
from harness.yaml_errors import validation_message

__all__ = [
    "REDACTED", "ConfigError", "EnvRef", "FinetuneSettings", "JudgeSettings", "ModelConfig", "PriceOverride",
    "RagSettings", "ReasoningEffort", "RunConfig", "RunSettings", "SafeName", "StopWhen", "StructuredOutput", "VariantConfig",
    "api_key_for", "chroma_server_address", "header_values", "load_config", "read_yaml", "validation_message",
]
