"""fine_tuned: a model trained on the train split (`harness finetune`), asked with its training prompt."""

from __future__ import annotations

from typing import ClassVar

from harness.prompts.kinds.base import VariantKind


class FineTuned(VariantKind):
    """Renders like a baseline, with the variant's prompt overrides: the fine-tuning export writes
    render_training_example (harness.prompts.variants), which is this very prompt plus the expected answer, so
    the model is asked what it was trained on. The trained model itself (models.X.model_file or lora) belongs to
    the model, not the kind: a missing one skips every variant on that model (harness.runner.preflight)."""

    name: ClassVar[str] = "fine_tuned"
    trains: ClassVar[bool] = True
    renders_training_prompt: ClassVar[bool] = True
