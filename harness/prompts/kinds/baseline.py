"""baseline: the task's prompt alone, the reference the other variants are compared with."""

from __future__ import annotations

from typing import ClassVar

from harness.prompts.kinds.base import VariantKind


class Baseline(VariantKind):
    """The instructions and the item's input, nothing added; no parameters, nothing to prepare."""

    name: ClassVar[str] = "baseline"
    renders_training_prompt: ClassVar[bool] = True
    paired_reference: ClassVar[bool] = True
