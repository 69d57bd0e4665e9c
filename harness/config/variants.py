"""`variants:`: one entry per variant; its kind checks the fields it reads."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from harness import variant_kinds
from harness.config._base import SafeName, _Strict


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
